import { TRPCError, tracked } from "@trpc/server";
import type { ChannelRow, ChannelStore, RetainedRange } from "@wedsync/db";
import type { LocalFanout } from "./fanout.ts";
import { Inbox } from "./inbox.ts";
import { type ChannelMessage, type ChannelReset, messageId, toChannelMessage } from "./message.ts";
import type { Metrics } from "./metrics.ts";
import { type OutboundSocket, type SendBufferLimits, waitForRoom } from "./slow-consumer.ts";

export interface StreamOptions {
  store: ChannelStore;
  fanout: LocalFanout;
  metrics: Metrics;
  channel: ChannelRow;
  /** Resume after this seq; null starts at the channel head (live only). */
  afterSeq: number | null;
  /** The resume id named another epoch of the channel: announce a reset, then replay from the start. */
  otherEpoch?: boolean;
  signal: AbortSignal;
  /** Whose stream this is; revocations for this user make the stream re-check access. */
  userId: string;
  /** Re-checks read access after a revocation (false ends the stream with FORBIDDEN). */
  stillAllowed: () => Promise<boolean>;
  /** Called once when the stream ends (or is abandoned before it started). */
  onEnd?: () => void;
  /** The socket the stream writes to; while its send buffer is full the stream pauses. */
  socket?: OutboundSocket;
  sendLimits: SendBufferLimits;
  inboxCapacity: number;
  pageSize: number;
}

/** tRPC drops a subscription whose socket closed before it started iterating, without ending it. */
const UNCLAIMED_STREAM_MS = 30_000;

/**
 * A channel's messages after a cursor, gap-free and duplicate-free: listen first, then read the
 * store, then stream live, dropping what the cursor has passed. Listening and reading the head
 * happen before this resolves (before tRPC tells the client `started`), so whatever is published
 * once the client has seen `started` reaches it. A live seq that skips ahead, or a dropped inbox,
 * sends the stream back to the store. What retention already removed is announced with a `reset`
 * item instead of being skipped silently.
 */
export async function openChannelStream(options: StreamOptions) {
  const inbox = new Inbox(options.inboxCapacity, options.userId);
  const stopListening = await options.fanout.listen(options.channel.id, inbox);
  let range: RetainedRange;
  try {
    range = await options.store.retainedRange(options.channel.id, new Date());
  } catch (error) {
    stopListening();
    throw error;
  }
  const end = () => {
    stopListening();
    options.onEnd?.();
  };
  const claim = { state: "waiting" as "waiting" | "claimed" | "abandoned" };
  const unclaimed = setTimeout(() => {
    if (claim.state !== "waiting") return;
    claim.state = "abandoned";
    end();
  }, UNCLAIMED_STREAM_MS);
  unclaimed.unref();
  return stream(
    options,
    inbox,
    range,
    () => {
      if (claim.state === "abandoned") return false;
      claim.state = "claimed";
      clearTimeout(unclaimed);
      return true;
    },
    end,
  );
}

async function* stream(
  options: StreamOptions,
  inbox: Inbox,
  range: RetainedRange,
  claim: () => boolean,
  end: () => void,
) {
  if (!claim()) return;
  const { store, metrics, channel, signal } = options;
  metrics.subscriptions.inc();

  const reset = (reason: ChannelReset["reason"], oldestSeq: number | null, atSeq: number) =>
    tracked<ChannelReset>(messageId(channel.id, atSeq), {
      type: "reset",
      channel: channel.name,
      reason,
      oldestSeq,
    });
  const deliver = (message: ChannelMessage) => {
    metrics.deliveries.inc();
    return tracked(message.id, message);
  };
  /** False once the socket stayed full too long and was closed: the stream ends, the client resumes. */
  const hasRoom = async () => {
    const { socket } = options;
    if (!socket || socket.bufferedAmount <= options.sendLimits.maxBufferedBytes) return true;
    const room = await waitForRoom(socket, options.sendLimits, signal);
    if (!room && !signal.aborted) metrics.slowConsumersDropped.inc();
    return room;
  };

  /** Replays stored messages after `cursor`; ends at `head` at least, announcing what retention took. */
  async function* catchUp(from: number, head: number) {
    let cursor = from;
    for (;;) {
      const rows = await store.readMessages(channel.id, cursor, options.pageSize, new Date());
      for (const row of rows) {
        if (!(await hasRoom())) return null;
        if (row.seq > cursor + 1) yield reset("retention", row.seq, row.seq - 1);
        yield deliver(toChannelMessage(row, channel.name));
        cursor = row.seq;
      }
      if (rows.length < options.pageSize || signal.aborted) break;
    }
    if (cursor < head) {
      yield reset("retention", null, head);
      cursor = head;
    }
    return cursor;
  }

  try {
    let cursor: number;
    if (options.afterSeq === null) {
      cursor = range.lastSeq;
    } else if (options.afterSeq > range.lastSeq) {
      yield reset("unknown", range.oldestSeq, range.lastSeq);
      cursor = range.lastSeq;
    } else {
      if (options.otherEpoch) yield reset("unknown", range.oldestSeq, 0);
      const caughtUp = yield* catchUp(options.afterSeq, range.lastSeq);
      if (caughtUp === null) return;
      cursor = caughtUp;
    }

    while (!signal.aborted) {
      if (inbox.takeRevoked() && !(await options.stillAllowed())) {
        throw new TRPCError({ code: "FORBIDDEN", message: `your access to ${channel.name} was revoked` });
      }
      if (inbox.takeLost()) {
        metrics.resyncs.inc();
        const caughtUp = yield* catchUp(cursor, cursor);
        if (caughtUp === null) return;
        cursor = caughtUp;
        continue;
      }
      const message = inbox.take();
      if (!message) {
        await inbox.wait(signal);
        continue;
      }
      if (message.seq <= cursor) continue;
      if (message.seq > cursor + 1) {
        const caughtUp = yield* catchUp(cursor, message.seq - 1);
        if (caughtUp === null) return;
        cursor = caughtUp;
      }
      if (message.seq <= cursor) continue;
      if (!(await hasRoom())) return;
      metrics.deliveryLatency.observe((Date.now() - message.sentAt.getTime()) / 1000);
      yield deliver(message);
      cursor = message.seq;
    }
  } finally {
    metrics.subscriptions.dec();
    end();
  }
}
