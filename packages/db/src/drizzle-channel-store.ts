import { setImmediate as nextTurn } from "node:timers/promises";
import {
  and,
  asc,
  count,
  desc,
  eq,
  gt,
  inArray,
  isNotNull,
  isNull,
  lt,
  lte,
  min,
  notExists,
  type SQL,
  sql,
} from "drizzle-orm";
import { type Transaction, transactionAs } from "./actor-transaction.ts";
import { appendUnderLock, guardedAppend } from "./append-statements.ts";
import {
  type AppendMessage,
  type AuditQuery,
  type ChannelStore,
  type ChannelStores,
  ChannelUnavailableError,
  type ClaimWebhookDeliveries,
  type FailWebhookDelivery,
  type NewChannel,
  type NewWebhook,
  type PendingMessage,
  type SubscribeRequest,
  type SubscribeResult,
  type WebhookDelivery,
  WebhookLimitError,
} from "./channel-store.ts";
import type { Database } from "./client.ts";
import { type AppendResult, GroupCommit, type GroupCommitStats } from "./group-commit.ts";
import {
  auditLog,
  channels,
  grants,
  type MessageRow,
  messageRemovals,
  messages,
  type NewAuditRow,
  subscriptions,
  webhookOutbox,
  webhooks,
} from "./schema.ts";
import type { StoreActor } from "./store-actor.ts";

const UNIQUE_VIOLATION = "23505";
/**
 * Expired messages deleted per transaction. On PGlite a cleanup runs as synchronous WebAssembly
 * chained by microtasks, so it holds the event loop until it yields: 10,000 per batch, and no yield
 * between batches, held it 0.8 s to delete 50,000 (probe, 200,000 stored). 1,000 per batch with a
 * turn of the event loop between batches bounds what a live message waits behind it.
 */
const CLEANUP_BATCH = 1_000;
/**
 * Idle channels deleted per transaction, with their subscriptions, grants and any messages left. In
 * one statement, 20,000 of them held PGlite's event loop 1.4 s (3.4 s with 5 messages each); 100 per
 * batch, 14-23 ms per batch (median), at most 48-100 ms, in 3.0-4.7 s in all (probe).
 */
const CHANNEL_CLEANUP_BATCH = 100;
const WEBHOOK_HINT_MS = 60_000;
const WEBHOOK_HINTS_MAX = 100_000;

/** PGlite returns `{ rows }` from execute, postgres.js an array of rows. */
function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? []);
}

/**
 * Ids as one Postgres array literal (`{a,b}`), bound as a single `uuid[]` parameter: a statement whose
 * text does not depend on how many ids it reads, prepared once, and cheaper than an `IN` list with
 * one placeholder per id (PGlite, 500 heads 11.2 -> 3.6 ms, 5,000 heads 74-126 -> 32 ms). A uuid holds
 * no character the literal would have to quote.
 */
const uuidArray = (ids: readonly string[]) => `{${ids.join(",")}}`;

function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; e && typeof e === "object"; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === UNIQUE_VIOLATION) return true;
  }
  return false;
}

/** The store of one database; every call goes through the view of an actor (row level security). */
export class DrizzleChannelStores implements ChannelStores {
  /** Channels seen with webhooks -> until when to believe it (see insertNext); only a performance hint. */
  private readonly webhookHints = new Map<string, number>();
  private readonly deliveriesQueued = new Set<() => void>();
  private readonly groupCommit: GroupCommit;

  /** `maxAppendBatch`: most appends of one channel per group commit (1 turns group commit off). */
  constructor(
    private readonly db: Database,
    options: { maxAppendBatch?: number } = {},
  ) {
    this.groupCommit = new GroupCommit(
      db,
      (actor, input) => this.view(actor).appendOne(input),
      (channelId) => (this.webhookHints.get(channelId) ?? 0) >= Date.now(),
      options.maxAppendBatch,
    );
  }

  /** What group commit did so far (tests and metrics). */
  get appendStats(): Readonly<GroupCommitStats> {
    return this.groupCommit.stats;
  }

  as(actor: StoreActor): ChannelStore {
    return this.view(actor);
  }

  private view(actor: StoreActor): DrizzleChannelStore {
    return new DrizzleChannelStore(
      this.db,
      actor,
      this.webhookHints,
      this.deliveriesQueued,
      this.groupCommit,
    );
  }
}

class DrizzleChannelStore implements ChannelStore {
  constructor(
    private readonly root: Database,
    private readonly actor: StoreActor,
    private readonly webhookHints: Map<string, number>,
    private readonly deliveriesQueued: Set<() => void>,
    private readonly groupCommit: GroupCommit,
  ) {}

  /**
   * Runs `work` in one transaction as the actor: under the non-owner role and with the actor's settings,
   * so the database's policies apply to every statement. `work` must not call other public methods (a
   * second transaction would wait for this one on a single-connection database).
   */
  private run<T>(work: (db: Transaction) => Promise<T>, leading?: readonly SQL[]): Promise<T> {
    return transactionAs(this.root, this.actor, work, leading);
  }

  upsertChannel(input: NewChannel) {
    return this.run(async (db) => {
      const inserted = await db.insert(channels).values(input).onConflictDoNothing().returning();
      if (inserted[0]) return { channel: inserted[0], created: true };
      // Undefined when the existing channel is not visible to this actor (someone else's form channel).
      return { channel: await findChannelIn(db, input.name), created: false };
    });
  }

  channelHeads(channelIds: readonly string[]) {
    if (channelIds.length === 0) return Promise.resolve([]);
    return this.run((db) =>
      db
        .select({ id: channels.id, lastSeq: channels.lastSeq })
        .from(channels)
        .where(sql`${channels.id} = any(${uuidArray(channelIds)}::uuid[])`),
    );
  }

  findChannel(name: string) {
    return this.run((db) => findChannelIn(db, name));
  }

  appendMessage(input: AppendMessage): Promise<AppendResult> {
    return this.groupCommit.append(this.actor, input);
  }

  /** One append in its own transaction; the group commit's path for an idle channel and its fallback. */
  async appendOne(input: AppendMessage): Promise<AppendResult> {
    const key = input.idempotencyKey;
    try {
      let queued = false;
      const result = await this.run(async (db) => {
        const existing = key === null ? undefined : await findByKeyIn(db, input.channelId, key);
        if (existing) return { message: existing, duplicate: true };
        const inserted = await this.insertNext(db, input);
        queued = inserted.queuedDeliveries;
        return { message: inserted.row, duplicate: false };
      });
      // Committed: the worker's claim can see the rows now.
      if (queued) for (const listener of this.deliveriesQueued) listener();
      return result;
    } catch (error) {
      // A concurrent retry with the same key won the race; the failed transaction rolled back its seq bump.
      if (key === null || !isUniqueViolation(error)) throw error;
      const existing = await this.findMessageByIdempotencyKey(input.channelId, key);
      if (!existing) throw error;
      return { message: existing, duplicate: true };
    }
  }

  /**
   * Bumps the channel head under its row lock and inserts at the new seq, so commits land in seq order. A
   * channel with webhooks also gets its outbox rows (transactional outbox: the message and its deliveries
   * commit together or not at all).
   *
   * Channels without webhooks pay nothing for the feature: one statement, which only adds `webhook_count = 0`
   * to the row it already locks. That guard holds under concurrency: an UPDATE that waited for the row lock
   * re-checks its WHERE on the newest row version (EvalPlanQual), and add/removeWebhook change the count
   * under that lock in the transaction that changes the webhooks. Folding the outbox CTE into every append
   * instead was measured on Postgres 15 (EXPLAIN ANALYZE, 3 x 400 appends to a channel without webhooks,
   * statements planned every time as drizzle sends them through postgres.js and PGlite) at +0.07 ms planning
   * and +0.01-0.02 ms execution on a ~0.22 ms statement: about +40% of the append's database time, for an
   * empty index probe. A per-instance cache alone would need cross-instance invalidation and could store a
   * message without its deliveries. So the store keeps a hint of which channels have webhooks but never
   * trusts it: when the hint is missing or stale the guard makes the plain statement change nothing and the
   * append goes the webhook way (insertLocked); a stale "has webhooks" only costs that way until the hint
   * expires or the locked row shows no webhooks.
   */
  private async insertNext(
    db: Transaction,
    input: AppendMessage,
  ): Promise<{ row: MessageRow; queuedDeliveries: boolean }> {
    const hinted = this.webhookHints.get(input.channelId);
    if (hinted === undefined || hinted < Date.now()) {
      this.webhookHints.delete(input.channelId);
      const row = await insertStatement(db, input, true);
      if (row) return { row, queuedDeliveries: false };
    }
    const { row, webhookCount } = await insertLocked(db, input);
    if (!row) throw new ChannelUnavailableError(input.channelId);
    if (webhookCount === 0) {
      this.webhookHints.delete(input.channelId);
    } else {
      if (this.webhookHints.size >= WEBHOOK_HINTS_MAX) this.webhookHints.clear();
      this.webhookHints.set(input.channelId, Date.now() + WEBHOOK_HINT_MS);
    }
    return { row, queuedDeliveries: webhookCount > 0 };
  }

  findMessageByIdempotencyKey(channelId: string, key: string) {
    return this.run((db) => findByKeyIn(db, channelId, key));
  }

  readMessages(channelId: string, afterSeq: number, limit: number, now: Date) {
    return this.run((db) => readMessagesIn(db, channelId, afterSeq, limit, now));
  }

  retainedRange(channelId: string, now: Date) {
    return this.run(async (db) => {
      const [head] = await db
        .select({ lastSeq: channels.lastSeq })
        .from(channels)
        .where(eq(channels.id, channelId));
      return { oldestSeq: await oldestRetainedIn(db, channelId, now), lastSeq: head?.lastSeq ?? 0 };
    });
  }

  subscribe(request: SubscribeRequest): Promise<SubscribeResult> {
    // The lock serializes one user's subscribes across instances so the tier limit cannot be raced
    // past. It leads the transaction, so it goes out with BEGIN, the actor statement and the state read
    // (one round trip), and the state read, a statement of its own after it, sees every subscribe that
    // held the lock before.
    const lock = sql`select pg_advisory_xact_lock(hashtext(${request.userId}))`;
    return this.run(
      async (tx) => {
        const { activeCount, headSeq, activeCursor } = await subscribeStateIn(
          tx,
          request.channelId,
          request.userId,
        );
        // A channel cached past its deletion is told apart from a full tier: the caller looks it up again.
        if (headSeq === null) throw new ChannelUnavailableError(request.channelId);
        const alreadyActive = activeCursor !== undefined;
        if (!alreadyActive && activeCount >= request.maxActive) return { ok: false, activeCount };

        // A resume point beyond the head (a made-up id) must not hide messages not yet sent.
        const cursorSeq =
          request.fromSeq === null ? (activeCursor ?? headSeq) : Math.min(request.fromSeq, headSeq);
        const { channelId, missedLimit, now } = request;
        // Each needs only the cursor, so they go out together: one round trip, where each was one wait
        // behind a fan-out turn on a busy instance. Whichever runs first, a refused upsert is what fails.
        const [[subscription], missed] = await Promise.all([
          tx
            .insert(subscriptions)
            .values({ channelId, userId: request.userId, cursorSeq, active: true })
            .onConflictDoUpdate({
              target: [subscriptions.channelId, subscriptions.userId],
              set: { cursorSeq, active: true, updatedAt: sql`now()` },
            })
            .returning(),
          readMessagesIn(tx, channelId, cursorSeq, missedLimit, now),
        ]);
        if (!subscription) throw new Error("subscription upsert returned nothing");
        const activeAfter = activeCount + (alreadyActive ? 0 : 1);
        return { ok: true, subscription, activeCount: activeAfter, missed, lastSeq: headSeq };
      },
      [lock],
    );
  }

  unsubscribe(channelId: string, userId: string) {
    return this.run(async (db) => {
      const rows = await db
        .update(subscriptions)
        .set({ active: false, updatedAt: sql`now()` })
        .where(
          and(
            eq(subscriptions.channelId, channelId),
            eq(subscriptions.userId, userId),
            eq(subscriptions.active, true),
          ),
        )
        .returning({ id: subscriptions.id });
      return rows.length > 0;
    });
  }

  activeSubscription(channelId: string, userId: string) {
    return this.run(async (db) => {
      const rows = await db
        .select()
        .from(subscriptions)
        .where(
          and(
            eq(subscriptions.channelId, channelId),
            eq(subscriptions.userId, userId),
            eq(subscriptions.active, true),
          ),
        )
        .limit(1);
      return rows[0];
    });
  }

  listSubscribers(channelId: string) {
    return this.run((db) =>
      db
        .select()
        .from(subscriptions)
        .where(and(eq(subscriptions.channelId, channelId), eq(subscriptions.active, true)))
        .orderBy(asc(subscriptions.subscribedAt)),
    );
  }

  listUserChannels(userId: string, now: Date) {
    return this.run(async (db) => {
      const unread = db
        .select({ n: count() })
        .from(messages)
        .where(
          and(
            eq(messages.channelId, subscriptions.channelId),
            gt(messages.seq, subscriptions.cursorSeq),
            gt(messages.expiresAt, now),
          ),
        );
      const rows = await db
        .select({
          channel: channels,
          cursorSeq: subscriptions.cursorSeq,
          unread: sql<number>`(${unread})::int`,
        })
        .from(subscriptions)
        .innerJoin(channels, eq(channels.id, subscriptions.channelId))
        .where(and(eq(subscriptions.userId, userId), eq(subscriptions.active, true)))
        .orderBy(desc(channels.lastActivity));
      return rows.map((r) => ({ ...r, unread: Number(r.unread) }));
    });
  }

  pendingMessages(userId: string, limit: number, now: Date): Promise<PendingMessage[]> {
    return this.run(async (db) => {
      const rows = await db
        .select({ message: messages, channelName: channels.name })
        .from(subscriptions)
        .innerJoin(channels, eq(channels.id, subscriptions.channelId))
        .innerJoin(
          messages,
          and(eq(messages.channelId, subscriptions.channelId), gt(messages.seq, subscriptions.cursorSeq)),
        )
        .where(
          and(eq(subscriptions.userId, userId), eq(subscriptions.active, true), gt(messages.expiresAt, now)),
        )
        // By seq within each channel, never by time: a limited page must never skip a seq that an ack of the
        // page's highest seq would then lose.
        .orderBy(asc(messages.channelId), asc(messages.seq))
        .limit(limit);
      return rows.map((r) => ({ ...r.message, channelName: r.channelName }));
    });
  }

  ack(userId: string, acks: ReadonlyArray<{ channelId: string; seq: number }>) {
    const highest = new Map<string, number>();
    for (const { channelId, seq } of acks) highest.set(channelId, Math.max(seq, highest.get(channelId) ?? 0));
    return this.run(async (tx) => {
      let moved = 0;
      for (const [channelId, seq] of highest) {
        const rows = await tx
          .update(subscriptions)
          // Capped at the head: a made-up id from the future must not hide messages not yet sent.
          .set({
            cursorSeq: sql`least(${seq}, (select ${channels.lastSeq} from ${channels} where ${channels.id} = ${channelId}))`,
            updatedAt: sql`now()`,
          })
          .where(
            and(
              eq(subscriptions.channelId, channelId),
              eq(subscriptions.userId, userId),
              eq(subscriptions.active, true),
              lt(subscriptions.cursorSeq, seq),
            ),
          )
          .returning({ id: subscriptions.id });
        moved += rows.length;
      }
      return moved;
    });
  }

  /**
   * Deletes expired messages in batches, each with its count per channel added to
   * channel_message_removals in the same statement, so `queuedIn` can tell what is stored without
   * counting it.
   */
  deleteExpiredMessages(now: Date) {
    return this.inBatches("cleanup:messages", CLEANUP_BATCH, async (tx) => {
      const result = await tx.execute(sql`
with expired as (
  select channel_id, seq from ${messages} where expires_at < ${now.toISOString()}::timestamptz
  limit ${CLEANUP_BATCH}
),
gone as (
  delete from ${messages} m using expired e
  where m.channel_id = e.channel_id and m.seq = e.seq
  returning m.channel_id
),
per_channel as (
  select channel_id, count(*) as n from gone group by channel_id
),
recorded as (
  insert into ${messageRemovals} (channel_id, removed)
  select channel_id, n from per_channel
  on conflict (channel_id) do update set removed = ${messageRemovals}.removed + excluded.removed
)
select coalesce(sum(n), 0)::float8 as deleted from per_channel`);
      return rowsOf<{ deleted: number }>(result)[0]?.deleted ?? 0;
    });
  }

  async deleteInactiveChannels(before: Date) {
    const deleted: string[] = [];
    const count = await this.inBatches("cleanup:channels", CHANNEL_CLEANUP_BATCH, async (tx) => {
      const idle = and(
        lt(channels.lastActivity, before),
        notExists(
          tx
            .select({ one: sql`1` })
            .from(subscriptions)
            .where(and(eq(subscriptions.channelId, channels.id), eq(subscriptions.active, true))),
        ),
      );
      // The condition is checked again on the rows deleted, as the single statement did: a channel
      // someone subscribed to since the batch was chosen stays.
      const batch = tx.select({ id: channels.id }).from(channels).where(idle).limit(CHANNEL_CLEANUP_BATCH);
      const rows = await tx
        .delete(channels)
        .where(and(inArray(channels.id, batch), idle))
        .returning({ id: channels.id });
      for (const row of rows) deleted.push(row.id);
      return rows.length;
    });
    return count === null ? null : deleted;
  }

  /**
   * Runs `batch` (which deletes at most `size` rows and says how many) in its own transaction under
   * the named cleanup lock until it deletes fewer, with a turn of the event loop between batches.
   * How many it deleted in all; null when another instance held the lock before the first batch.
   */
  private async inBatches(
    lock: string,
    size: number,
    batch: (tx: Transaction) => Promise<number>,
  ): Promise<number | null> {
    let deleted: number | null = null;
    for (;;) {
      const count = await this.exclusive(lock, batch);
      if (count === null) return deleted;
      deleted = (deleted ?? 0) + count;
      if (count < size) return deleted;
      await nextTurn();
    }
  }

  /** Runs `work` only if no other instance holds the named lock right now; null when one does. */
  private exclusive<T>(name: string, work: (tx: Transaction) => Promise<T>): Promise<T | null> {
    return this.run(async (tx) => {
      const result = await tx.execute(
        sql`select pg_try_advisory_xact_lock(hashtext(${`wedsync:${name}`})) as locked`,
      );
      const [lock] = rowsOf<{ locked: boolean }>(result);
      return lock?.locked ? work(tx) : null;
    });
  }

  grant(channelId: string, userId: string, grantedBy: string) {
    return this.run(async (db) => {
      const rows = await db
        .insert(grants)
        .values({ channelId, userId, grantedBy })
        .onConflictDoNothing()
        .returning({ userId: grants.userId });
      return rows.length > 0;
    });
  }

  revoke(channelId: string, userId: string) {
    return this.run(async (tx) => {
      const rows = await tx
        .delete(grants)
        .where(and(eq(grants.channelId, channelId), eq(grants.userId, userId)))
        .returning({ userId: grants.userId });
      // Only a real revocation ends the durable subscription; revoking someone who held no grant
      // (a member by name) must not drop what they have pending.
      if (rows.length === 0) return false;
      await tx
        .update(subscriptions)
        .set({ active: false, updatedAt: sql`now()` })
        .where(and(eq(subscriptions.channelId, channelId), eq(subscriptions.userId, userId)));
      return true;
    });
  }

  hasGrant(channelId: string, userId: string) {
    return this.run(async (db) => {
      const rows = await db
        .select({ userId: grants.userId })
        .from(grants)
        .where(and(eq(grants.channelId, channelId), eq(grants.userId, userId)))
        .limit(1);
      return rows.length > 0;
    });
  }

  listGrants(channelId: string) {
    return this.run((db) =>
      db.select().from(grants).where(eq(grants.channelId, channelId)).orderBy(asc(grants.createdAt)),
    );
  }

  /**
   * The count on the channel row is changed under that row's lock, which every append of the channel takes,
   * in the transaction that changes the webhooks. The lock is taken first: a change that locked the row
   * only after touching channel_webhooks could deadlock with an append (whose outbox insert waits for the
   * webhook row) and would not queue for the row lock in arrival order.
   */
  async addWebhook({ maxPerChannel, ...input }: NewWebhook) {
    const row = await this.run(async (tx) => {
      const counted = await tx
        .update(channels)
        .set({ webhookCount: sql`${channels.webhookCount} + 1` })
        .where(
          and(
            eq(channels.id, input.channelId),
            maxPerChannel === undefined ? undefined : lt(channels.webhookCount, maxPerChannel),
          ),
        )
        .returning({ id: channels.id });
      if (counted.length === 0) {
        const exists = await tx
          .select({ id: channels.id })
          .from(channels)
          .where(eq(channels.id, input.channelId));
        if (exists.length > 0 && maxPerChannel !== undefined) throw new WebhookLimitError(maxPerChannel);
        throw new ChannelUnavailableError(input.channelId);
      }
      const [inserted] = await tx.insert(webhooks).values(input).returning();
      if (!inserted) throw new Error("webhook insert returned nothing");
      return inserted;
    });
    this.webhookHints.set(input.channelId, Date.now() + WEBHOOK_HINT_MS);
    return row;
  }

  removeWebhook(channelId: string, webhookId: string) {
    return this.run(async (tx) => {
      await tx
        .select({ id: channels.id })
        .from(channels)
        .where(eq(channels.id, channelId))
        .for("no key update");
      const rows = await tx
        .delete(webhooks)
        .where(and(eq(webhooks.channelId, channelId), eq(webhooks.id, webhookId)))
        .returning({ id: webhooks.id });
      if (rows.length === 0) return false;
      await tx
        .update(channels)
        .set({ webhookCount: sql`greatest(${channels.webhookCount} - 1, 0)` })
        .where(eq(channels.id, channelId));
      return true;
    });
  }

  listWebhooks(channelId: string) {
    return this.run((db) =>
      db
        .select()
        .from(webhooks)
        .where(eq(webhooks.channelId, channelId))
        .orderBy(asc(webhooks.createdAt), asc(webhooks.id)),
    );
  }

  /**
   * One statement: locks up to `limit` due rows, skipping rows locked by a concurrent claim on another
   * instance, and leases them (attempts + 1, next_attempt_at = now + lease) before the lock is released, so
   * no other claim takes them while this instance delivers. If the instance dies, the lease runs out and
   * another instance retries (at-least-once; receivers dedupe by message id).
   */
  claimWebhookDeliveries(request: ClaimWebhookDeliveries): Promise<WebhookDelivery[]> {
    return this.run(async (db) => {
      const due = db
        .select({ id: webhookOutbox.id })
        .from(webhookOutbox)
        .where(and(isNotNull(webhookOutbox.nextAttemptAt), lte(webhookOutbox.nextAttemptAt, request.now)))
        .orderBy(asc(webhookOutbox.nextAttemptAt))
        .limit(request.limit)
        .for("update", { skipLocked: true });
      const claimed = db.$with("claimed").as(
        db
          .update(webhookOutbox)
          .set({
            attempts: sql`${webhookOutbox.attempts} + 1`,
            nextAttemptAt: new Date(request.now.getTime() + request.leaseMs),
          })
          .where(inArray(webhookOutbox.id, due))
          .returning({
            id: webhookOutbox.id,
            webhookId: webhookOutbox.webhookId,
            channelId: webhookOutbox.channelId,
            seq: webhookOutbox.seq,
            attempts: webhookOutbox.attempts,
          }),
      );
      const rows = await db
        .with(claimed)
        .select({
          id: claimed.id,
          webhookId: claimed.webhookId,
          attempts: claimed.attempts,
          url: webhooks.url,
          secret: webhooks.secret,
          channelName: channels.name,
          message: messages,
        })
        .from(claimed)
        .innerJoin(webhooks, eq(webhooks.id, claimed.webhookId))
        .innerJoin(channels, eq(channels.id, claimed.channelId))
        .innerJoin(messages, and(eq(messages.channelId, claimed.channelId), eq(messages.seq, claimed.seq)))
        .orderBy(asc(claimed.id));
      return rows.map((row) => ({ ...row, id: Number(row.id), attempts: Number(row.attempts) }));
    });
  }

  nextWebhookAttemptAt() {
    return this.run(async (db) => {
      const [next] = await db
        .select({ at: min(webhookOutbox.nextAttemptAt) })
        .from(webhookOutbox)
        .where(isNotNull(webhookOutbox.nextAttemptAt));
      return next?.at ?? null;
    });
  }

  onWebhookDeliveriesQueued(listener: () => void) {
    this.deliveriesQueued.add(listener);
    return () => {
      this.deliveriesQueued.delete(listener);
    };
  }

  async completeWebhookDelivery(id: number, deliveredAt: Date) {
    await this.run((db) =>
      db
        .update(webhookOutbox)
        .set({ deliveredAt, nextAttemptAt: null, lastError: null })
        .where(eq(webhookOutbox.id, id)),
    );
  }

  failWebhookDelivery(failure: FailWebhookDelivery) {
    return this.run(async (db) => {
      const rows = await db
        .update(webhookOutbox)
        .set({ lastError: failure.error, nextAttemptAt: failure.retryAt })
        .where(
          and(
            eq(webhookOutbox.id, failure.id),
            eq(webhookOutbox.attempts, failure.attempts),
            isNull(webhookOutbox.deliveredAt),
          ),
        )
        .returning({ id: webhookOutbox.id });
      return rows.length > 0;
    });
  }

  listWebhookOutbox(webhookId: string) {
    return this.run((db) =>
      db
        .select()
        .from(webhookOutbox)
        .where(eq(webhookOutbox.webhookId, webhookId))
        .orderBy(asc(webhookOutbox.id)),
    );
  }

  /**
   * The batch as one JSON parameter, not drizzle's multi-row insert: that built one parameter per column
   * per row on every flush (each broadcast's audit row paid for it) and a statement text per batch size.
   */
  async writeAudit(rows: NewAuditRow[]) {
    if (rows.length === 0) return;
    const list = JSON.stringify(
      rows.map((row) => ({
        at: row.at?.toISOString() ?? null,
        actorId: row.actorId ?? null,
        action: row.action,
        channelName: row.channelName ?? null,
        outcome: row.outcome,
        reason: row.reason ?? null,
        instanceId: row.instanceId,
        detail: row.detail ?? {},
      })),
    );
    const field = (name: string) => sql.raw(`r.value->>'${name}'`);
    await this.run((db) =>
      db.execute(sql`insert into ${auditLog}
        (${sql.identifier(auditLog.at.name)}, ${sql.identifier(auditLog.actorId.name)},
         ${sql.identifier(auditLog.action.name)}, ${sql.identifier(auditLog.channelName.name)},
         ${sql.identifier(auditLog.outcome.name)}, ${sql.identifier(auditLog.reason.name)},
         ${sql.identifier(auditLog.instanceId.name)}, ${sql.identifier(auditLog.detail.name)})
        select coalesce((${field("at")})::timestamptz, now()), ${field("actorId")}, ${field("action")},
          ${field("channelName")}, (${field("outcome")})::audit_outcome, ${field("reason")},
          ${field("instanceId")}, r.value->'detail'
        from jsonb_array_elements(${list}::jsonb) with ordinality as r(value, ord)
        order by r.ord`),
    );
  }

  readAudit(query: AuditQuery) {
    const conditions = [
      query.beforeId === undefined ? undefined : lt(auditLog.id, query.beforeId),
      query.channelName === undefined ? undefined : eq(auditLog.channelName, query.channelName),
    ];
    return this.run((db) =>
      db
        .select()
        .from(auditLog)
        .where(and(...conditions))
        .orderBy(desc(auditLog.id))
        .limit(query.limit),
    );
  }

  counts(now: Date) {
    return this.run(async (db) => {
      const [c] = await db.select({ n: count() }).from(channels);
      const [s] = await db.select({ n: count() }).from(subscriptions).where(eq(subscriptions.active, true));
      return { channels: c?.n ?? 0, activeSubscriptions: s?.n ?? 0, queuedMessages: await queuedIn(db, now) };
    });
  }

  queuedMessages(now: Date) {
    return this.run((db) => queuedIn(db, now));
  }
}

/**
 * Unexpired stored messages, without counting them: every message a channel stores moved its head by
 * one, and cleanup records what it deletes (channel_message_removals), so what is stored is the heads
 * less the removals; what expired and cleanup has not deleted yet is the only part counted, through
 * the expiry index. A full count took 0.6 s per million stored messages, on every /metrics scrape.
 */
async function queuedIn(db: Transaction, now: Date): Promise<number> {
  const result = await db.execute(sql`
select (
  (select coalesce(sum(last_seq), 0) from ${channels})
  - (select coalesce(sum(removed), 0) from ${messageRemovals})
  - (select count(*) from ${messages} where expires_at <= ${now.toISOString()}::timestamptz)
)::float8 as n`);
  return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
}

async function findChannelIn(db: Transaction, name: string) {
  const rows = await db.select().from(channels).where(eq(channels.name, name)).limit(1);
  return rows[0];
}

async function findByKeyIn(db: Transaction, channelId: string, key: string) {
  const rows = await db
    .select()
    .from(messages)
    .where(and(eq(messages.channelId, channelId), eq(messages.idempotencyKey, key)))
    .limit(1);
  return rows[0];
}

/**
 * The append for a channel that may have webhooks: locks the channel row in one statement, then inserts in
 * the next ones. Under READ COMMITTED each statement reads from its own snapshot, taken when it starts. A
 * single statement that waited for the row lock would go on with the newest row version but still read
 * channel_webhooks as of its start, so a webhook whose add committed while it waited would get no outbox
 * row for a message stored after it. The later statements' snapshots are taken with the lock held: they see
 * every webhook committed before, and add/removeWebhook cannot commit a change until this transaction ends.
 * The outbox rows are queued by a database function: the webhooks (and their secrets) are visible to the
 * channel's owners only, not to every publisher (migration 0003).
 */
async function insertLocked(
  tx: Transaction,
  input: AppendMessage,
): Promise<{ row: MessageRow | undefined; webhookCount: number }> {
  const [locked] = await tx
    .select({ webhookCount: channels.webhookCount })
    .from(channels)
    .where(eq(channels.id, input.channelId))
    .for("no key update");
  if (!locked) return { row: undefined, webhookCount: 0 };
  const row = await insertStatement(tx, input, false);
  if (row && locked.webhookCount > 0) {
    await tx.execute(sql`select wedsync_queue_webhook_deliveries(${row.channelId}, ${row.seq})`);
  }
  return { row, webhookCount: locked.webhookCount };
}

/**
 * What a subscribe decides from, in one statement (each statement more was one more wait behind a
 * fan-out turn on a busy instance): the user's active subscriptions, the channel's head (null when the
 * channel is gone or not visible to the actor) and the cursor of the user's subscription to it, if
 * that one is active.
 */
async function subscribeStateIn(db: Transaction, channelId: string, userId: string) {
  const active = db
    .select({ n: count().as("n") })
    .from(subscriptions)
    .where(and(eq(subscriptions.userId, userId), eq(subscriptions.active, true)))
    .as("active");
  const [state] = await db
    .select({
      activeCount: active.n,
      headSeq: channels.lastSeq,
      existingActive: subscriptions.active,
      existingCursor: subscriptions.cursorSeq,
    })
    .from(active)
    .leftJoin(channels, eq(channels.id, channelId))
    .leftJoin(subscriptions, and(eq(subscriptions.channelId, channelId), eq(subscriptions.userId, userId)));
  if (!state) throw new Error("the subscribe state read returned no row");
  const { activeCount, headSeq, existingActive, existingCursor } = state;
  return {
    activeCount,
    headSeq,
    activeCursor: existingActive === true && existingCursor !== null ? existingCursor : undefined,
  };
}

function readMessagesIn(db: Transaction, channelId: string, afterSeq: number, limit: number, now: Date) {
  return db
    .select()
    .from(messages)
    .where(and(eq(messages.channelId, channelId), gt(messages.seq, afterSeq), gt(messages.expiresAt, now)))
    .orderBy(asc(messages.seq))
    .limit(limit);
}

async function oldestRetainedIn(db: Transaction, channelId: string, now: Date): Promise<number | null> {
  const [oldest] = await db
    .select({ seq: min(messages.seq) })
    .from(messages)
    .where(and(eq(messages.channelId, channelId), gt(messages.expiresAt, now)));
  return oldest?.seq ?? null;
}

/**
 * One statement. Undefined when nothing was inserted: no such channel, or (`unlessWebhooks`) the channel
 * has webhooks.
 */
async function insertStatement(
  db: Transaction,
  input: AppendMessage,
  unlessWebhooks: boolean,
): Promise<MessageRow | undefined> {
  const rows = await (unlessWebhooks ? guardedAppend : appendUnderLock).run(db, {
    ...input,
    payload: JSON.stringify(input.payload),
    expiresAt: input.expiresAt.toISOString(),
  });
  return rows[0];
}
