import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  foreignKey,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

export const channelType = pgEnum("channel_type", ["private", "shared", "broadcast"]);

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const channels = pgTable(
  "websocket_channels",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("channel_name").notNull(),
    type: channelType("channel_type").notNull(),
    scope: text("scope").notNull(),
    entity: text("entity").notNull(),
    entityId: text("entity_id").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: createdAt(),
    lastActivity: timestamp("last_activity", { withTimezone: true }).notNull().defaultNow(),
    /** Head of the channel's total order; the next message gets lastSeq + 1 under this row's lock. */
    lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
    /**
     * How many channel_webhooks rows the channel has, kept under this row's lock by add/remove, so an append
     * can tell from the row it already locks whether the message must be queued for webhooks.
     */
    webhookCount: integer("webhook_count").notNull().default(0),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    uniqueIndex("websocket_channels_name_key").on(t.name),
    index("websocket_channels_activity_idx").on(t.lastActivity),
  ],
);

export const subscriptions = pgTable(
  "channel_subscriptions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    channelId: uuid("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull(),
    /** Delivery cursor: the highest seq this user has acknowledged on the channel. */
    cursorSeq: bigint("cursor_seq", { mode: "number" }).notNull().default(0),
    active: boolean("active").notNull().default(true),
    subscribedAt: timestamp("subscribed_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("channel_subscriptions_channel_user_key").on(t.channelId, t.userId),
    index("channel_subscriptions_user_active_idx").on(t.userId).where(sql`${t.active}`),
  ],
);

export const messages = pgTable(
  "channel_message_queue",
  {
    channelId: uuid("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    seq: bigint("seq", { mode: "number" }).notNull(),
    event: text("event").notNull(),
    payload: jsonb("payload").$type<unknown>().notNull(),
    senderId: text("sender_id").notNull(),
    idempotencyKey: text("idempotency_key"),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.channelId, t.seq] }),
    uniqueIndex("channel_message_queue_idempotency_key").on(t.channelId, t.idempotencyKey),
    index("channel_message_queue_expires_idx").on(t.expiresAt),
  ],
);

/**
 * How many of a channel's messages cleanup has deleted. With the head (every append moves it by the
 * messages it inserts), it gives the messages a channel still stores without counting them:
 * `last_seq - removed`. Written by cleanup only, so appends never wait on these rows.
 */
export const messageRemovals = pgTable("channel_message_removals", {
  channelId: uuid("channel_id")
    .primaryKey()
    .references(() => channels.id, { onDelete: "cascade" }),
  removed: bigint("removed", { mode: "number" }).notNull().default(0),
});

/** Access shared beyond a channel's name audience (channel.grant / channel.revoke). */
export const grants = pgTable(
  "channel_grants",
  {
    channelId: uuid("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull(),
    grantedBy: text("granted_by").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.channelId, t.userId] }), index("channel_grants_user_idx").on(t.userId)],
);

export const auditOutcome = pgEnum("audit_outcome", ["ok", "denied", "error"]);

export const auditLog = pgTable(
  "channel_audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
    actorId: text("actor_id"),
    action: text("action").notNull(),
    channelName: text("channel_name"),
    outcome: auditOutcome("outcome").notNull(),
    reason: text("reason"),
    instanceId: text("instance_id").notNull(),
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index("channel_audit_log_at_idx").on(t.at),
    index("channel_audit_log_channel_idx").on(t.channelName),
  ],
);

/** Outbound webhooks: every message stored on the channel is POSTed, signed with `secret`, to `url`. */
export const webhooks = pgTable(
  "channel_webhooks",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    channelId: uuid("channel_id")
      .notNull()
      .references(() => channels.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    /** The HMAC key; needed in clear to sign, so it is shown to the owner once and never listed. */
    secret: text("secret").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("channel_webhooks_channel_idx").on(t.channelId)],
);

/**
 * One row per (webhook, message) to deliver, written in the same statement that stores the message
 * (transactional outbox). `next_attempt_at` null means nothing more to do (delivered or given up).
 * A row lives as long as its message: when retention deletes the message, the row goes with it.
 */
export const webhookOutbox = pgTable(
  "channel_webhook_outbox",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    webhookId: uuid("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    channelId: uuid("channel_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).defaultNow(),
    lastError: text("last_error"),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    foreignKey({
      name: "channel_webhook_outbox_message_fk",
      columns: [t.channelId, t.seq],
      foreignColumns: [messages.channelId, messages.seq],
    }).onDelete("cascade"),
    // Due rows only: delivered and abandoned rows drop out of the index the claim scans.
    index("channel_webhook_outbox_due_idx").on(t.nextAttemptAt).where(sql`${t.nextAttemptAt} is not null`),
    // For the cascade from expired messages, and for reading a message's deliveries.
    index("channel_webhook_outbox_message_idx").on(t.channelId, t.seq),
    index("channel_webhook_outbox_webhook_idx").on(t.webhookId),
  ],
);

export type ChannelRow = typeof channels.$inferSelect;
export type SubscriptionRow = typeof subscriptions.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;
export type AuditRow = typeof auditLog.$inferSelect;
export type NewAuditRow = typeof auditLog.$inferInsert;
export type WebhookRow = typeof webhooks.$inferSelect;
export type WebhookOutboxRow = typeof webhookOutbox.$inferSelect;
