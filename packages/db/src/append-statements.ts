import { and, eq, type SQL, sql } from "drizzle-orm";
import type { Transaction } from "./actor-transaction.ts";
import { BuiltOnce } from "./built-once.ts";
import type { AppendMessage } from "./channel-store.ts";
import { channels, type MessageRow, messages } from "./schema.ts";

/**
 * The statements that append messages, each one statement: a CTE moves the channel head by the number
 * of messages under the row lock, and the insert takes the seqs it freed, so commits land in seq order.
 * `guarded` adds `webhook_count = 0` to the row the bump locks: such an append changes nothing on a
 * channel with webhooks, which needs the outbox (see DrizzleChannelStore.insertNext).
 */
function headBump(db: Transaction, by: SQL, guarded: boolean) {
  const channel = eq(channels.id, sql.placeholder("channelId"));
  return db.$with("bump").as(
    db
      .update(channels)
      .set({ lastSeq: sql`${channels.lastSeq} + ${by}`, lastActivity: sql`now()` })
      .where(guarded ? and(channel, eq(channels.webhookCount, 0)) : channel)
      .returning({ channelId: channels.id, head: channels.lastSeq }),
  );
}

/** One message; values: an AppendMessage with `payload` as JSON text and `expiresAt` as ISO text. */
function appendOne(guarded: boolean) {
  const value = (name: keyof AppendMessage) => sql.placeholder(name);
  return new BuiltOnce<MessageRow>(messages, (db) => {
    const bump = headBump(db, sql`1`, guarded);
    return db
      .with(bump)
      .insert(messages)
      .select(
        db
          .select({
            channelId: bump.channelId,
            seq: bump.head,
            event: sql`${value("event")}`.as("event"),
            payload: sql`${value("payload")}::jsonb`.as("payload"),
            senderId: sql`${value("senderId")}`.as("sender_id"),
            idempotencyKey: sql`${value("idempotencyKey")}`.as("idempotency_key"),
            // Taken after the row lock, unlike now(), so sentAt follows seq order.
            createdAt: sql`clock_timestamp()`.as("created_at"),
            expiresAt: sql`${value("expiresAt")}::timestamptz`.as("expires_at"),
          })
          .from(bump),
      )
      .returning();
  });
}

export const guardedAppend = appendOne(true);
export const appendUnderLock = appendOne(false);

/**
 * `count` messages in input order, guarded; values: `channelId`, `count` and `list`, a JSON array of
 * `{ event, payload, senderId, idempotencyKey, expiresAt }`.
 */
export const appendMany = new BuiltOnce<MessageRow>(messages, (db) => {
  const count = sql.placeholder("count");
  const bump = headBump(db, sql`${count}`, true);
  const item = (field: string) => sql.raw(`m.value->>'${field}'`);
  return db
    .with(bump)
    .insert(messages)
    .select(
      db
        .select({
          channelId: bump.channelId,
          seq: sql`${bump.head} - ${count} + m.ord`.as("seq"),
          event: sql`${item("event")}`.as("event"),
          payload: sql`m.value->'payload'`.as("payload"),
          senderId: sql`${item("senderId")}`.as("sender_id"),
          idempotencyKey: sql`${item("idempotencyKey")}`.as("idempotency_key"),
          createdAt: sql`clock_timestamp()`.as("created_at"),
          expiresAt: sql`(${item("expiresAt")})::timestamptz`.as("expires_at"),
        })
        .from(bump)
        .crossJoin(
          sql`jsonb_array_elements(${sql.placeholder("list")}::jsonb) with ordinality as m(value, ord)`,
        ),
    )
    .returning();
});
