import { and, inArray } from "drizzle-orm";
import { type Transaction, transactionAs } from "./actor-transaction.ts";
import { appendMany } from "./append-statements.ts";
import type { AppendMessage } from "./channel-store.ts";
import type { Database } from "./client.ts";
import { type MessageRow, messages } from "./schema.ts";
import { actorStatement, type StoreActor, settingsKey } from "./store-actor.ts";

export interface AppendResult {
  message: MessageRow;
  duplicate: boolean;
}

interface PendingAppend {
  actor: StoreActor;
  input: AppendMessage;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

export interface GroupCommitStats {
  /** Transactions that committed more than one append. */
  batches: number;
  /** Appends committed by those transactions. */
  batchedAppends: number;
  /** Batches rolled back and retried one by one. */
  fallbacks: number;
}

/** Rolls a batch back so that its appends are retried one by one. */
class BatchNotApplicable extends Error {}

/**
 * Group commit of appends, across channels. One channel's appends serialize on its row lock, each holding
 * it until its commit is durable, so a channel takes at most one append per commit (~1-2 ms on Postgres
 * with fsync). Appends go together instead: what the event loop's current turn asked for, on any number
 * of channels, becomes one transaction (one statement per run of appends from the same actor, which bumps
 * each channel's head and inserts its rows; row level security checks each run as its own sender) and one
 * commit.
 * Nobody waits for a timer: the transaction starts at the end of the turn (setImmediate). A channel whose
 * commit is in flight sits out until it is durable, and what arrived for it meanwhile goes in the next
 * transaction, started as soon as that commit is. On PGlite this is what lets appends go together at all:
 * a whole PGlite transaction runs in one turn, as synchronous WebAssembly calls chained by microtasks, so
 * no second request is read while it runs and none would ever be waiting for it.
 *
 * Many weddings at once is the case it is for: one append per channel at a time, on many channels, paid a
 * transaction and a statement each. Channels are locked in id order, so two instances' transactions lock
 * shared channels in the same order and never deadlock on each other.
 *
 * Each append still resolves only once its row is committed, a channel's in seq order. Whatever a batch
 * cannot do (a channel has webhooks and needs the outbox, an idempotency key raced in from another
 * instance, a sender the database refuses) rolls the whole batch back and its appends are retried one by
 * one through `appendOne`, so every caller gets exactly the outcome it would have had alone.
 */
export class GroupCommit {
  /** Appends not yet in a transaction, by channel, in arrival order. */
  private readonly waiting = new Map<string, PendingAppend[]>();
  /** Channels whose commit is in flight: their new appends wait for the next transaction. */
  private readonly committing = new Set<string>();
  private flushScheduled = false;
  readonly stats: GroupCommitStats = { batches: 0, batchedAppends: 0, fallbacks: 0 };

  constructor(
    private readonly db: Database,
    private readonly appendOne: (actor: StoreActor, input: AppendMessage) => Promise<AppendResult>,
    /** True when the channel is believed to have webhooks: those appends need the outbox path. */
    private readonly hasWebhooks: (channelId: string) => boolean,
    /** Most appends per transaction. */
    private readonly maxBatch = 500,
  ) {}

  append(actor: StoreActor, input: AppendMessage): Promise<AppendResult> {
    const { channelId } = input;
    let queued = this.waiting.get(channelId);
    if (!queued) {
      queued = [];
      this.waiting.set(channelId, queued);
    }
    if (!this.committing.has(channelId) && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => queued.push({ actor, input, resolve, reject }));
  }

  /** Starts a transaction with what waits on channels that have no commit in flight. */
  private flush() {
    this.flushScheduled = false;
    const batch = this.takeBatch();
    if (batch.size === 0) return;
    for (const channelId of batch.keys()) this.committing.add(channelId);
    void this.commit(batch).finally(() => {
      for (const channelId of batch.keys()) this.committing.delete(channelId);
      this.flush();
    });
  }

  /** Up to maxBatch appends, whole channels' queues first, by channel in id order. */
  private takeBatch(): Map<string, PendingAppend[]> {
    const ready = [...this.waiting.keys()].filter((channelId) => !this.committing.has(channelId)).sort();
    const batch = new Map<string, PendingAppend[]>();
    let room = this.maxBatch;
    for (const channelId of ready) {
      if (room === 0) {
        // The rest go in the transaction after this one.
        this.flushScheduled = true;
        setImmediate(() => this.flush());
        break;
      }
      const queued = this.waiting.get(channelId) as PendingAppend[];
      const taken = queued.splice(0, room);
      room -= taken.length;
      if (queued.length === 0) this.waiting.delete(channelId);
      batch.set(channelId, taken);
    }
    return batch;
  }

  /** Channels believed to have webhooks go one by one (the outbox path); the rest in one transaction. */
  private async commit(batch: Map<string, PendingAppend[]>): Promise<void> {
    const together = new Map<string, PendingAppend[]>();
    const alone: PendingAppend[] = [];
    for (const [channelId, appends] of batch) {
      if (this.hasWebhooks(channelId)) alone.push(...appends);
      else together.set(channelId, appends);
    }
    const appends = [...together.values()].flat();
    if (appends.length > 1) {
      const [first] = appends;
      const results = await transactionAs(this.db, (first as PendingAppend).actor, (tx) =>
        commitBatch(tx, together),
      )
        // Retried one by one below: each append gets its own outcome, errors included.
        .catch(() => undefined);
      if (results) {
        this.stats.batches += 1;
        this.stats.batchedAppends += appends.length;
        for (const [i, pending] of appends.entries()) pending.resolve(results[i] as AppendResult);
      } else {
        this.stats.fallbacks += 1;
        alone.unshift(...appends);
      }
    } else {
      alone.unshift(...appends);
    }
    for (const pending of alone) {
      await this.appendOne(pending.actor, pending.input).then(pending.resolve, pending.reject);
    }
  }
}

/**
 * The batch in one transaction: one statement per run of appends from the same actor (row level security
 * checks each run as its own sender), in channel id order; results in the batch's order. Throws to roll
 * back when it cannot apply.
 */
async function commitBatch(tx: Transaction, batch: Map<string, PendingAppend[]>): Promise<AppendResult[]> {
  const results: AppendResult[] = [];
  for (const [i, run] of runsByActor([...batch.values()].flat()).entries()) {
    const [first] = run;
    if (!first) continue;
    // The first run's actor statement opened the transaction (transactionAs).
    if (i > 0) await tx.execute(actorStatement(first.actor));
    results.push(
      ...(await insertRun(
        tx,
        run.map((pending) => pending.input),
      )),
    );
  }
  return results;
}

/** Consecutive appends of the same actor, in order. */
function runsByActor(batch: PendingAppend[]): PendingAppend[][] {
  const runs: PendingAppend[][] = [];
  let lastKey: string | undefined;
  for (const pending of batch) {
    const key = settingsKey(pending.actor);
    if (key === lastKey) runs.at(-1)?.push(pending);
    else runs.push([pending]);
    lastKey = key;
  }
  return runs;
}

/** A channel's idempotency key, as one Map key. */
const keyOf = (channelId: string, key: string) => `${channelId} ${key}`;

/**
 * One actor's appends, on one or more channels: what an idempotency key already stored (or an earlier
 * append of this run used) is answered as a duplicate; the rest take consecutive seqs of their channels in
 * one statement.
 */
async function insertRun(tx: Transaction, inputs: AppendMessage[]): Promise<AppendResult[]> {
  const keyed = inputs.filter((input) => input.idempotencyKey !== null);
  const byKey = new Map<string, MessageRow>();
  if (keyed.length > 0) {
    const stored = await tx
      .select()
      .from(messages)
      .where(
        and(
          inArray(messages.channelId, [...new Set(keyed.map((input) => input.channelId))]),
          inArray(messages.idempotencyKey, [
            ...new Set(keyed.map((input) => input.idempotencyKey as string)),
          ]),
        ),
      );
    // Across channels this also finds one channel's key stored on another; keyed by their own channel,
    // such rows never answer an input.
    for (const row of stored) {
      if (row.idempotencyKey !== null) byKey.set(keyOf(row.channelId, row.idempotencyKey), row);
    }
  }
  const seenKeys = new Set(byKey.keys());
  const fresh = inputs.filter((input) => {
    if (input.idempotencyKey === null) return true;
    const key = keyOf(input.channelId, input.idempotencyKey);
    if (seenKeys.has(key)) return false;
    seenKeys.add(key);
    return true;
  });
  const inserted = fresh.length === 0 ? [] : await insertMany(tx, fresh);
  if (inserted.length !== fresh.length) throw new BatchNotApplicable();
  // A channel's rows in seq order belong to its fresh inputs in order.
  const rowsOf = new Map<string, MessageRow[]>();
  for (const row of inserted.sort((a, b) => a.seq - b.seq)) {
    const rows = rowsOf.get(row.channelId);
    if (rows) rows.push(row);
    else rowsOf.set(row.channelId, [row]);
    if (row.idempotencyKey !== null) byKey.set(keyOf(row.channelId, row.idempotencyKey), row);
  }
  const freshRows = new Map(fresh.map((input) => [input, rowsOf.get(input.channelId)?.shift()]));
  return inputs.map((input) => {
    const own = freshRows.get(input);
    if (own) return { message: own, duplicate: false };
    const earlier = byKey.get(keyOf(input.channelId, input.idempotencyKey ?? ""));
    if (!earlier) throw new BatchNotApplicable();
    return { message: earlier, duplicate: true };
  });
}

/** The messages in one statement (see appendMany), in input order per channel. */
function insertMany(tx: Transaction, inputs: AppendMessage[]): Promise<MessageRow[]> {
  const list = JSON.stringify(
    inputs.map((input) => ({
      channelId: input.channelId,
      event: input.event,
      payload: input.payload,
      senderId: input.senderId,
      idempotencyKey: input.idempotencyKey,
      expiresAt: input.expiresAt.toISOString(),
    })),
  );
  return appendMany.run(tx, { list });
}
