import { setBounded } from "@wedsync/channels";
import {
  type ChannelRow,
  type ChannelStore,
  type ChannelStores,
  SERVICE_ACTOR,
  settingsKey,
} from "@wedsync/db";

const ignore = () => {};

/** Views kept (see withCoalescedReads); past this many, all are dropped and made again as needed. */
const MAX_VIEWS = 1_000;

/** Resolves after the current turn of the event loop, once the I/O it read has been handled. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Calls with the same key share one read, and a caller only ever joins a read that starts after
 * it asked: calls made during one turn of the event loop (a burst of connects read from many
 * sockets at once), or while a read of the key is still running, wait together for one more read.
 * So every caller sees the store as of some moment after its call (what a query of its own would
 * have seen), and N concurrent callers cost one or two queries instead of N. The wait is one turn
 * of the loop: the embedded database answers synchronously, so reads never overlap by themselves.
 * `arg` of the call that starts a read is what the read gets (callers of one key pass equal ones).
 */
export function coalesce<V, A = undefined>(
  read: (key: string, arg: A) => Promise<V>,
): (key: string, ...arg: A extends undefined ? [] : [A]) => Promise<V> {
  const running = new Map<string, Promise<V>>();
  const queued = new Map<string, Promise<V>>();
  const start = (key: string, arg: A): Promise<V> => {
    queued.delete(key);
    const result = read(key, arg);
    running.set(key, result);
    result.then(
      () => running.delete(key),
      () => running.delete(key),
    );
    return result;
  };
  return (key, ...rest) => {
    let batch = queued.get(key);
    if (batch) return batch;
    const inFlight = running.get(key);
    const arg = rest[0] as A;
    batch = (inFlight ? inFlight.then(ignore, ignore) : nextTurn()).then(() => start(key, arg));
    queued.set(key, batch);
    return batch;
  };
}

type Head = { id: string; lastSeq: number };

/**
 * `channelHeads` calls made during one turn of the event loop become one query for all their
 * channels, which starts after all of them were made; each caller gets the rows it asked for.
 */
export function batchHeads(
  read: (channelIds: readonly string[]) => Promise<Head[]>,
): (channelIds: readonly string[]) => Promise<Head[]> {
  let pending: { ids: Set<string>; rows: Promise<Map<string, Head>> } | undefined;
  return async (channelIds) => {
    if (!pending) {
      const ids = new Set<string>();
      const rows = nextTurn().then(async () => {
        pending = undefined;
        return new Map((await read([...ids])).map((row) => [row.id, row]));
      });
      pending = { ids, rows };
    }
    const batch = pending;
    for (const id of channelIds) batch.ids.add(id);
    const rows = await batch.rows;
    return channelIds.flatMap((id) => rows.get(id) ?? []);
  };
}

/** Equal column values: Dates by time, JSON columns by content, the rest by identity. */
function sameRow(a: object, b: object): boolean {
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  for (const key of keys) {
    const x = left[key];
    const y = right[key];
    if (x === y) continue;
    if (x instanceof Date && y instanceof Date) {
      if (x.getTime() !== y.getTime()) return false;
    } else if (typeof x === "object" && x !== null && typeof y === "object" && y !== null) {
      if (JSON.stringify(x) !== JSON.stringify(y)) return false;
    } else return false;
  }
  return true;
}

/**
 * Hands out one object per distinct row content: every subscribed stream keeps its channel's row
 * (about 600 bytes with its dates and metadata), and a thousand subscribers of a channel that has
 * not changed meanwhile need one copy, not a thousand. Remembers the last row of up to `capacity`
 * keys; nobody mutates a row (the channel cache shares them the same way).
 */
export function rowInterner<Row extends object>(capacity = 10_000) {
  const rows = new Map<string, Row>();
  return (key: string, row: Row | undefined): Row | undefined => {
    if (row === undefined) {
      rows.delete(key);
      return row;
    }
    const known = rows.get(key);
    if (known !== undefined && sameRow(known, row)) return known;
    setBounded(rows, key, row, capacity);
    return row;
  };
}

/**
 * The store, with the reads every `channel.events` makes (the channel by name, then its head or
 * retained range once the stream listens) coalesced, so a connect storm asks the database far less
 * than once per client and read.
 *
 * Row level security decides what a read returns, so a read is only ever shared between calls of the
 * same actor (same database settings): the channel by name and the retained range. Heads are the
 * exception: `channelHeads` returns seq counters of channels the caller's stream has already been
 * authorized for (by name, then as the caller), so the heads of one turn of the loop are read in one
 * query for everyone, as the service. Channel rows are shared between callers by content (see
 * rowInterner), as the channel cache already shares them; nobody mutates one. Every other method is
 * the store's own.
 */
export function withCoalescedReads(stores: ChannelStores): ChannelStores {
  const intern = rowInterner<ChannelRow>();
  const findChannel = coalesce(async (key, store: ChannelStore) => {
    const name = key.slice(key.lastIndexOf("\u0000") + 1);
    return intern(name, await store.findChannel(name));
  });
  // The range as of when the shared read starts (after every caller's call), not each caller's `now`.
  const retainedRange = coalesce((key, store: ChannelStore) =>
    store.retainedRange(key.slice(key.lastIndexOf("\u0000") + 1), new Date()),
  );
  const service = stores.as(SERVICE_ACTOR);
  const channelHeads = batchHeads((channelIds) => service.channelHeads(channelIds));
  // One view per actor settings, reused: a view is made for every call (twice per broadcast), and
  // making one (a store, a new prototype, three closures) was ~2% of a broadcast's server time.
  // Actors with the same settings are the same to the database, so they can share a view.
  const views = new Map<string, ChannelStore>();
  return {
    as(actor) {
      const who = settingsKey(actor);
      const known = views.get(who);
      if (known) return known;
      if (views.size >= MAX_VIEWS) views.clear();
      const store = stores.as(actor);
      // The actor's store with three methods replaced; every other method is the store's own.
      const view = Object.assign(Object.create(store) as ChannelStore, {
        findChannel: (name: string) => findChannel(`${who}\u0000${name}`, store),
        retainedRange: (channelId: string) => retainedRange(`${who}\u0000${channelId}`, store),
        channelHeads,
      });
      views.set(who, view);
      return view;
    },
  };
}
