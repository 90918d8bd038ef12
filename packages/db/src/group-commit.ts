import { and, eq, inArray } from "drizzle-orm";
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
 * Group commit of appends, per channel. One channel's appends serialize on its row lock, each holding it
 * until its commit is durable, so a channel takes at most one append per commit (~1-2 ms on Postgres with
 * fsync). While one commit of a channel is in flight, the appends that arrive for it wait and then go
 * together: one transaction, one head bump and one multi-row insert per run of appends from the same actor
 * (row level security checks each run as its own sender), one commit. Nobody waits for a timer: an
 * append to an idle channel starts its transaction at the end of the event loop's current turn
 * (setImmediate), together with whatever other appends of the channel that turn's requests made. On
 * PGlite this is what lets appends go together at all: a whole PGlite transaction runs in one turn, as
 * synchronous WebAssembly calls chained by microtasks, so no second request is read while it runs and
 * none would ever be waiting for it.
 *
 * Each append still resolves only once its row is committed, in seq order. Whatever a batch cannot do
 * (the channel has webhooks and needs the outbox, an idempotency key raced in from another instance, a
 * sender the database refuses) rolls the whole batch back and its appends are retried one by one through
 * `appendOne`, so every caller gets exactly the outcome it would have had alone.
 */
export class GroupCommit {
  /** Appends waiting for their channel's commit in flight; a channel is here only while one is. */
  private readonly waiting = new Map<string, PendingAppend[]>();
  readonly stats: GroupCommitStats = { batches: 0, batchedAppends: 0, fallbacks: 0 };

  constructor(
    private readonly db: Database,
    private readonly appendOne: (actor: StoreActor, input: AppendMessage) => Promise<AppendResult>,
    /** True when the channel is believed to have webhooks: those appends need the outbox path. */
    private readonly hasWebhooks: (channelId: string) => boolean,
    private readonly maxBatch = 500,
  ) {}

  append(actor: StoreActor, input: AppendMessage): Promise<AppendResult> {
    const queued = this.waiting.get(input.channelId) ?? this.startQueue(input.channelId);
    return new Promise((resolve, reject) => queued.push({ actor, input, resolve, reject }));
  }

  /** An idle channel's queue: it drains at the end of this turn (see the class comment). */
  private startQueue(channelId: string) {
    const queued: PendingAppend[] = [];
    this.waiting.set(channelId, queued);
    setImmediate(() => void this.drain(channelId));
    return queued;
  }

  /** Commits what queued behind the previous commit, batch after batch, until nothing waits. */
  private async drain(channelId: string): Promise<void> {
    for (;;) {
      const queued = this.waiting.get(channelId);
      if (!queued || queued.length === 0) {
        this.waiting.delete(channelId);
        return;
      }
      const batch = queued.splice(0, this.maxBatch);
      await this.commit(channelId, batch);
    }
  }

  private async commit(channelId: string, batch: PendingAppend[]): Promise<void> {
    if (batch.length > 1 && !this.hasWebhooks(channelId)) {
      const [first] = batch;
      const results = await transactionAs(this.db, (first as PendingAppend).actor, (tx) =>
        commitBatch(tx, channelId, batch),
      )
        // Retried one by one below: each append gets its own outcome, errors included.
        .catch(() => undefined);
      if (results) {
        this.stats.batches += 1;
        this.stats.batchedAppends += batch.length;
        for (const [i, pending] of batch.entries()) pending.resolve(results[i] as AppendResult);
        return;
      }
      this.stats.fallbacks += 1;
    }
    for (const pending of batch) {
      await this.appendOne(pending.actor, pending.input).then(pending.resolve, pending.reject);
    }
  }
}

/** The batch in one transaction; results in batch order. Throws to roll back when it cannot apply. */
async function commitBatch(
  tx: Transaction,
  channelId: string,
  batch: PendingAppend[],
): Promise<AppendResult[]> {
  const results: AppendResult[] = [];
  for (const [i, run] of runsByActor(batch).entries()) {
    const [first] = run;
    if (!first) continue;
    // The first run's actor statement opened the transaction (transactionAs).
    if (i > 0) await tx.execute(actorStatement(first.actor));
    results.push(
      ...(await insertRun(
        tx,
        channelId,
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

/**
 * One actor's appends: what an idempotency key already stored (or an earlier append of this run used) is
 * answered as a duplicate; the rest take consecutive seqs in one head bump and one insert.
 */
async function insertRun(
  tx: Transaction,
  channelId: string,
  inputs: AppendMessage[],
): Promise<AppendResult[]> {
  const keys = [
    ...new Set(inputs.flatMap((input) => (input.idempotencyKey === null ? [] : [input.idempotencyKey]))),
  ];
  const byKey = new Map<string, MessageRow>();
  if (keys.length > 0) {
    const stored = await tx
      .select()
      .from(messages)
      .where(and(eq(messages.channelId, channelId), inArray(messages.idempotencyKey, keys)));
    for (const row of stored) if (row.idempotencyKey !== null) byKey.set(row.idempotencyKey, row);
  }
  const seenKeys = new Set(byKey.keys());
  const fresh = inputs.filter((input) => {
    if (input.idempotencyKey === null) return true;
    if (seenKeys.has(input.idempotencyKey)) return false;
    seenKeys.add(input.idempotencyKey);
    return true;
  });
  const inserted = fresh.length === 0 ? [] : await insertMany(tx, channelId, fresh);
  if (inserted.length !== fresh.length) throw new BatchNotApplicable();
  inserted.sort((a, b) => a.seq - b.seq);
  const freshRows = new Map(fresh.map((input, i) => [input, inserted[i] as MessageRow]));
  for (const row of inserted) if (row.idempotencyKey !== null) byKey.set(row.idempotencyKey, row);
  return inputs.map((input) => {
    const own = freshRows.get(input);
    if (own) return { message: own, duplicate: false };
    const earlier = byKey.get(input.idempotencyKey ?? "");
    if (!earlier) throw new BatchNotApplicable();
    return { message: earlier, duplicate: true };
  });
}

/**
 * Moves the head by n under the row lock and inserts the n messages at the seqs it freed, in input order.
 * Nothing when the channel has webhooks (the outbox needs the one-by-one path), is gone, or is not the
 * actor's to write (row level security).
 */
function insertMany(tx: Transaction, channelId: string, inputs: AppendMessage[]): Promise<MessageRow[]> {
  const list = JSON.stringify(
    inputs.map((input) => ({
      event: input.event,
      payload: input.payload,
      senderId: input.senderId,
      idempotencyKey: input.idempotencyKey,
      expiresAt: input.expiresAt.toISOString(),
    })),
  );
  return appendMany.run(tx, { channelId, count: inputs.length, list });
}
