import type { ChannelRow, ChannelStore } from "@wedsync/db";

const ignore = () => {};

/** Resolves after the current turn of the event loop, once the I/O it read has been handled. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Calls with the same key share one read, and a caller only ever joins a read that starts after
 * it asked: calls made during one turn of the event loop (a burst of connects read from many
 * sockets at once), or while a read of the key is still running, wait together for one more read.
 * So every caller sees the store as of some moment after its call (what a query of its own would
 * have seen), and N concurrent callers cost one or two queries instead of N. The wait is one turn
 * of the loop: the embedded database answers synchronously, so reads never overlap by themselves.
 */
export function coalesce<V>(read: (key: string) => Promise<V>): (key: string) => Promise<V> {
  const running = new Map<string, Promise<V>>();
  const queued = new Map<string, Promise<V>>();
  const start = (key: string): Promise<V> => {
    queued.delete(key);
    const result = read(key);
    running.set(key, result);
    result.then(
      () => running.delete(key),
      () => running.delete(key),
    );
    return result;
  };
  return (key) => {
    let batch = queued.get(key);
    if (batch) return batch;
    const inFlight = running.get(key);
    batch = (inFlight ? inFlight.then(ignore, ignore) : nextTurn()).then(() => start(key));
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
    if (known === undefined && rows.size >= capacity) {
      const oldest = rows.keys().next().value;
      if (oldest !== undefined) rows.delete(oldest);
    }
    rows.set(key, row);
    return row;
  };
}

/**
 * The store, with the reads every `channel.events` makes (the channel by name, then its head or
 * retained range once the stream listens) coalesced: a connect storm subscribing thousands of
 * clients asks the database once per channel (heads: once for all channels) and turn of the event
 * loop, not once per client. Channel rows are shared between callers (see rowInterner), as the
 * channel cache already shares them; nobody mutates one. Every other method is the store's own.
 */
export function withCoalescedReads(store: ChannelStore): ChannelStore {
  const intern = rowInterner<ChannelRow>();
  const findChannel = coalesce(async (name) => intern(name, await store.findChannel(name)));
  // The range as of when the shared read starts (after every caller's call), not each caller's `now`.
  const retainedRange = coalesce((channelId) => store.retainedRange(channelId, new Date()));
  const overrides: Partial<ChannelStore> = {
    findChannel,
    retainedRange: (channelId) => retainedRange(channelId),
    channelHeads: batchHeads((channelIds) => store.channelHeads(channelIds)),
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof ChannelStore];
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      let method = bound.get(property);
      if (method === undefined) {
        method = value.bind(target);
        bound.set(property, method);
      }
      return method;
    },
  });
}
