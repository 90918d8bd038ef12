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

type Bump = ReturnType<typeof headBump>;

/** What each inserted row takes from the statement's values; `rows` is joined when they come as a list. */
interface Row {
  seq: SQL;
  event: SQL;
  payload: SQL;
  senderId: SQL;
  idempotencyKey: SQL;
  expiresAt: SQL;
}

/** Inserts `row` for every message after the head bump, returning the stored rows. */
function insertAfter(db: Transaction, bump: Bump, row: Row, rows?: SQL) {
  const select = db
    .select({
      channelId: bump.channelId,
      seq: row.seq.as("seq"),
      event: row.event.as("event"),
      payload: row.payload.as("payload"),
      senderId: row.senderId.as("sender_id"),
      idempotencyKey: row.idempotencyKey.as("idempotency_key"),
      // Taken after the row lock, unlike now(), so sentAt follows seq order.
      createdAt: sql`clock_timestamp()`.as("created_at"),
      expiresAt: row.expiresAt.as("expires_at"),
    })
    .from(bump)
    .$dynamic();
  return db
    .with(bump)
    .insert(messages)
    .select(rows === undefined ? select : select.crossJoin(rows))
    .returning();
}

/** One message; values: an AppendMessage with `payload` as JSON text and `expiresAt` as ISO text. */
function appendOne(guarded: boolean) {
  const value = (name: keyof AppendMessage) => sql`${sql.placeholder(name)}`;
  return new BuiltOnce<MessageRow>(messages, (db) => {
    const bump = headBump(db, sql`1`, guarded);
    return insertAfter(db, bump, {
      seq: sql`${bump.head}`,
      event: value("event"),
      payload: sql`${value("payload")}::jsonb`,
      senderId: value("senderId"),
      idempotencyKey: value("idempotencyKey"),
      expiresAt: sql`${value("expiresAt")}::timestamptz`,
    });
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
  return insertAfter(
    db,
    bump,
    {
      seq: sql`${bump.head} - ${count} + m.ord`,
      event: sql`${item("event")}`,
      payload: sql`m.value->'payload'`,
      senderId: sql`${item("senderId")}`,
      idempotencyKey: sql`${item("idempotencyKey")}`,
      expiresAt: sql`(${item("expiresAt")})::timestamptz`,
    },
    sql`jsonb_array_elements(${sql.placeholder("list")}::jsonb) with ordinality as m(value, ord)`,
  );
});
