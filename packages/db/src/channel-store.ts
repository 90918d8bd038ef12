import type {
  AuditRow,
  ChannelRow,
  GrantRow,
  MessageRow,
  NewAuditRow,
  SubscriptionRow,
  WebhookOutboxRow,
  WebhookRow,
} from "./schema.ts";
import type { StoreActor } from "./store-actor.ts";

export interface NewChannel {
  name: string;
  type: ChannelRow["type"];
  scope: string;
  entity: string;
  entityId: string;
  createdBy: string;
  metadata: Record<string, unknown>;
}

export interface AppendMessage {
  channelId: string;
  event: string;
  payload: unknown;
  senderId: string;
  idempotencyKey: string | null;
  expiresAt: Date;
}

export interface SubscribeRequest {
  channelId: string;
  userId: string;
  /** Start the cursor here instead of at the channel head (resume from a known message). */
  fromSeq: number | null;
  /** Most active subscriptions the user may hold; counted under a per-user lock. */
  maxActive: number;
  /** At most this many stored messages after the cursor come back with the subscription. */
  missedLimit: number;
  /** Messages that expire before this are no longer retained. */
  now: Date;
}

/**
 * A subscription with what its client missed, read in the transaction that set its cursor: the
 * messages after the cursor, oldest first, and the channel's head. Whether retention took any is
 * what the first of them says (its seq is not cursor + 1), not the channel's oldest retained seq:
 * reading that evaluates row level security once per message the channel keeps, where the planner
 * has no statistics to pick the index (PGlite: 1.4 ms of a 4 ms subscribe with 300 messages).
 */
export type SubscribeResult =
  | {
      ok: true;
      subscription: SubscriptionRow;
      activeCount: number;
      missed: MessageRow[];
      lastSeq: number;
    }
  | { ok: false; activeCount: number };

export interface RetainedRange {
  /** Lowest seq still stored and unexpired, or null when nothing is retained. */
  oldestSeq: number | null;
  lastSeq: number;
}

export interface UserChannel {
  channel: ChannelRow;
  cursorSeq: number;
  unread: number;
}

export interface PendingMessage extends MessageRow {
  channelName: string;
}

export interface AuditQuery {
  limit: number;
  /** Return rows with an id below this (paging backwards from the newest). */
  beforeId?: number;
  channelName?: string;
}

export interface NewWebhook {
  channelId: string;
  url: string;
  secret: string;
  createdBy: string;
  /** Most webhooks the channel may have; checked under the channel's row lock, so across instances. */
  maxPerChannel?: number;
}

export class WebhookLimitError extends Error {
  constructor(readonly limit: number) {
    super(`a channel may have at most ${limit} webhooks; remove one first`);
    this.name = "WebhookLimitError";
  }
}

export interface ClaimWebhookDeliveries {
  /** The caller's clock: rows with next_attempt_at <= now are due. */
  now: Date;
  limit: number;
  /** Claimed rows are not due again (for any instance) until now + leaseMs, unless completed or failed. */
  leaseMs: number;
}

/** One due delivery, claimed: what the worker needs to POST it. */
export interface WebhookDelivery {
  /** The outbox row id. */
  id: number;
  webhookId: string;
  url: string;
  secret: string;
  channelName: string;
  message: MessageRow;
  /** Attempts including this one (1 on the first claim). */
  attempts: number;
}

export interface FailWebhookDelivery {
  id: number;
  /** The attempts value of the claim that failed: a stale claimer cannot overwrite a newer outcome. */
  attempts: number;
  error: string;
  /** When to try again; null gives up (the row stays, undelivered, for inspection). */
  retryAt: Date | null;
}

export interface StoreCounts {
  channels: number;
  activeSubscriptions: number;
  queuedMessages: number;
}

/**
 * The channel is gone, or row level security keeps the actor from it (from sending to it, or from
 * subscribing): to the actor both look the same.
 */
export class ChannelUnavailableError extends Error {
  constructor(readonly channelId: string) {
    super(`channel ${channelId} does not exist or is closed to this actor`);
    this.name = "ChannelUnavailableError";
  }
}

/** The store of one database, reached only through an actor's view: the database enforces what it may do. */
export interface ChannelStores {
  as(actor: StoreActor): ChannelStore;
}

/**
 * Durable state of channels, subscriptions, messages and the audit log, as one actor sees it: rows the
 * actor may not see are absent, writes it may not make fail (row level security).
 * Every method is atomic; the message order of a channel is decided here (seq).
 */
export interface ChannelStore {
  /**
   * Creates the channel or returns the existing one with that name; `channel` is undefined when a channel
   * of that name exists but is not visible to the actor.
   */
  upsertChannel(input: NewChannel): Promise<{ channel: ChannelRow | undefined; created: boolean }>;
  findChannel(name: string): Promise<ChannelRow | undefined>;
  /** The current head (lastSeq) of each of these channels that still exists. */
  channelHeads(channelIds: readonly string[]): Promise<Array<{ id: string; lastSeq: number }>>;
  /**
   * Stores a message with the channel's next seq; an idempotency key already used returns the stored one.
   * In the same transaction, queues one outbox row per webhook of the channel (none are queued for a
   * duplicate): every webhook whose add committed before the message is stored, so a message appended after
   * addWebhook returned is always queued for it.
   */
  appendMessage(input: AppendMessage): Promise<{ message: MessageRow; duplicate: boolean }>;
  findMessageByIdempotencyKey(channelId: string, key: string): Promise<MessageRow | undefined>;
  /** Unexpired messages with seq > afterSeq, ascending. */
  readMessages(channelId: string, afterSeq: number, limit: number, now: Date): Promise<MessageRow[]>;
  retainedRange(channelId: string, now: Date): Promise<RetainedRange>;
  /** Throws ChannelUnavailableError when the actor cannot see the channel (or it is gone). */
  subscribe(request: SubscribeRequest): Promise<SubscribeResult>;
  /** Returns false when the user had no active subscription. */
  unsubscribe(channelId: string, userId: string): Promise<boolean>;
  activeSubscription(channelId: string, userId: string): Promise<SubscriptionRow | undefined>;
  listSubscribers(channelId: string): Promise<SubscriptionRow[]>;
  listUserChannels(userId: string, now: Date): Promise<UserChannel[]>;
  /** Unexpired messages after the cursor of each of the user's active subscriptions, oldest first per channel. */
  pendingMessages(userId: string, limit: number, now: Date): Promise<PendingMessage[]>;
  /** Moves each named channel's cursor forward to seq (never backwards); returns how many cursors moved. */
  ack(userId: string, acks: ReadonlyArray<{ channelId: string; seq: number }>): Promise<number>;
  /** Returns how many were deleted, or null when another instance is cleaning up right now. */
  deleteExpiredMessages(now: Date): Promise<number | null>;
  /** Deletes channels idle since `before` that nobody is subscribed to; their ids, or null as above. */
  deleteInactiveChannels(before: Date): Promise<string[] | null>;
  /** Returns false when the user already had a grant. */
  grant(channelId: string, userId: string, grantedBy: string): Promise<boolean>;
  /** Removes the grant and deactivates the user's subscription; false when there was no grant. */
  revoke(channelId: string, userId: string): Promise<boolean>;
  hasGrant(channelId: string, userId: string): Promise<boolean>;
  listGrants(channelId: string): Promise<GrantRow[]>;
  addWebhook(input: NewWebhook): Promise<WebhookRow>;
  /** Returns false when the channel has no webhook with that id. */
  removeWebhook(channelId: string, webhookId: string): Promise<boolean>;
  /** Oldest first. */
  listWebhooks(channelId: string): Promise<WebhookRow[]>;
  /**
   * Claims due outbox rows, oldest due first, skipping rows another instance is claiming right now
   * (FOR UPDATE SKIP LOCKED): counts the attempt and leases the rows until now + leaseMs.
   */
  claimWebhookDeliveries(request: ClaimWebhookDeliveries): Promise<WebhookDelivery[]>;
  /** When the earliest outbox row not yet delivered or given up on is due (leased rows: when their lease ends). */
  nextWebhookAttemptAt(): Promise<Date | null>;
  /**
   * Calls `listener` after every commit that queued outbox rows, made through any view of the same stores
   * (so on this instance); returns the function that stops it. The delivery worker is woken by it instead
   * of asking the database every second whether anything is due.
   */
  onWebhookDeliveriesQueued(listener: () => void): () => void;
  /** Marks the row delivered (nothing more to do). */
  completeWebhookDelivery(id: number, deliveredAt: Date): Promise<void>;
  /** Records a failed attempt and when to retry (or that there will be no retry). False if outdated. */
  failWebhookDelivery(failure: FailWebhookDelivery): Promise<boolean>;
  /** Outbox rows of one webhook, oldest first (inspection and tests). */
  listWebhookOutbox(webhookId: string): Promise<WebhookOutboxRow[]>;
  writeAudit(rows: NewAuditRow[]): Promise<void>;
  readAudit(query: AuditQuery): Promise<AuditRow[]>;
  counts(now: Date): Promise<StoreCounts>;
  /** `counts(now).queuedMessages` alone: what the queue-depth gauge reads on every scrape. */
  queuedMessages(now: Date): Promise<number>;
}
