import { TRPCError, tracked } from "@trpc/server";
import type { ChannelRow, ChannelStore, RetainedRange } from "@wedsync/db";
import { compactPrefix } from "./compact-frame.ts";
import type { LocalFanout } from "./fanout.ts";
import { Inbox, type LiveWriter } from "./inbox.ts";
import type { LiveWrites } from "./live-writes.ts";
import { type ChannelMessage, type ChannelReset, messageId, toChannelMessage } from "./message.ts";
import type { Metrics } from "./metrics.ts";
import { type OutboundSocket, type SendBufferLimits, waitForRoom } from "./slow-consumer.ts";
import type { StopListener, StopSignal } from "./stop-signal.ts";
import { expectStartedFrame, liveFrame, type StartingSubscription, type WsResponse } from "./wire-format.ts";

/** Whom a stream is for, as the stream needs them. */
export interface StreamSubscriber {
  /** Whose stream this is; revocations for this user make the stream re-check access. */
  readonly userId: string;
  /**
   * The subscriber's view of the store, made when needed: a stream reads it only when it starts and
   * when it must catch up, and an idle connection should not keep a view (and its helpers) alive.
   */
  store(): ChannelStore;
  /** Re-checks read access after a revocation (false ends the stream with FORBIDDEN). */
  stillAllowed(): Promise<boolean>;
  /** Called once when the stream ends (or is abandoned before it started). */
  end(): void;
}

export interface StreamOptions {
  subscriber: StreamSubscriber;
  /** Channel heads, read as the service: the stream's reader is already authorized for its channel. */
  heads: ChannelStore["channelHeads"];
  fanout: LocalFanout;
  metrics: Metrics;
  channel: ChannelRow;
  /** Resume after this seq; null starts at the channel head (live only). */
  afterSeq: number | null;
  /** The resume id named another epoch of the channel: announce a reset, then replay from the start. */
  otherEpoch?: boolean;
  signal: StopSignal;
  /** The socket the stream writes to; while its send buffer is full the stream pauses. */
  socket?: OutboundSocket;
  sendLimits: SendBufferLimits;
  inboxCapacity: number;
  pageSize: number;
}

/**
 * A stream nobody iterates and nobody stops (its signal never aborts) ends by itself after this long.
 * One whose signal aborts before it is iterated (its socket closed during set-up) ends at once.
 */
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
  const inbox = new Inbox(options.inboxCapacity, options.subscriber.userId);
  await options.fanout.listen(options.channel.id, inbox);
  let range: RetainedRange;
  try {
    range = await readRange(options);
  } catch (error) {
    options.fanout.unlisten(options.channel.id, inbox);
    throw error;
  }
  return new ChannelStream(options, inbox).run(range);
}

/**
 * The channel a stream was opened for no longer exists: deleted by cleanup, perhaps created again
 * under a new id (on this or another instance). The opener must resolve the name again rather than
 * listen to a dead id.
 */
export class ChannelGoneError extends Error {
  constructor(readonly channelId: string) {
    super(`channel ${channelId} no longer exists`);
  }
}

/**
 * Where the stream starts, read after it listens. A stream from the head (no cursor: every fresh
 * subscription) needs only the head, which the fan-out may already know (LocalFanout.liveHead) and
 * the store can answer for many channels at once. So does a resume, unless its cursor is above the
 * head or from another epoch: only the `unknown` reset those get names the channel's oldest retained
 * seq, and reading it costs a row level security check per message the channel keeps wherever the
 * planner has no statistics (see SubscribeResult). A head read also proves the channel still exists:
 * the row the stream was opened with may come from a cache.
 */
async function readRange(options: StreamOptions): Promise<RetainedRange> {
  const { channel, fanout, afterSeq } = options;
  const at = Date.now();
  if (afterSeq === null) {
    const lastSeq = fanout.liveHead(channel.id, at);
    if (lastSeq !== undefined) return { oldestSeq: null, lastSeq };
  }
  const [head] = await options.heads([channel.id]);
  if (!head) throw new ChannelGoneError(channel.id);
  fanout.storedHead(channel.id, head.lastSeq, at);
  const unknownCursor = afterSeq !== null && (afterSeq > head.lastSeq || options.otherEpoch === true);
  if (!unknownCursor) return { oldestSeq: null, lastSeq: head.lastSeq };
  return options.subscriber.store().retainedRange(channel.id, new Date());
}

function abandon(stream: ChannelStream) {
  stream.abandon();
}

/**
 * One subscriber's stream. A class rather than closures over `options`: an idle stream lives as
 * long as its connection, and what it keeps (these fields, methods shared on the prototype) is
 * what each subscribed connection costs.
 *
 * Two paths deliver, never at once. The generator (`run`) yields through tRPC: catch-up, resets,
 * errors, and whatever arrives while it is busy. Once it has caught up and waits with nothing
 * queued, live messages in seq order are written by `offer`, straight to the socket as the frame
 * tRPC would have sent (see expectStartedFrame); anything else wakes the generator. A yielded item
 * has been sent before the generator runs again, so the two paths keep the order.
 */
class ChannelStream implements LiveWriter, StartingSubscription, StopListener {
  private readonly subscriber: StreamSubscriber;
  private readonly fanout: LocalFanout;
  private readonly metrics: Metrics;
  private readonly channel: ChannelRow;
  private readonly signal: StopSignal;
  private readonly afterSeq: number | null;
  private readonly otherEpoch: boolean;
  private readonly socket: OutboundSocket | undefined;
  private readonly maxBufferedBytes: number;
  private readonly slowConsumerTimeoutMs: number;
  private readonly pageSize: number;
  private claim: "waiting" | "claimed" | "abandoned" = "waiting";
  private unclaimed: NodeJS.Timeout | undefined;
  /** The last seq this subscriber has been sent (or told it cannot have). */
  private cursor = 0;
  /** How tRPC's frames for this subscription start; known once it has started over a WebSocket. */
  private framePrefix: string | undefined;
  /** How its compact frames start, if its connection asked for them. */
  private compactFramePrefix: string | undefined;

  constructor(
    options: StreamOptions,
    private readonly inbox: Inbox,
  ) {
    this.subscriber = options.subscriber;
    this.fanout = options.fanout;
    this.metrics = options.metrics;
    this.channel = options.channel;
    this.signal = options.signal;
    this.afterSeq = options.afterSeq;
    this.otherEpoch = options.otherEpoch ?? false;
    this.socket = options.socket;
    this.maxBufferedBytes = options.sendLimits.maxBufferedBytes;
    this.slowConsumerTimeoutMs = options.sendLimits.timeoutMs;
    this.pageSize = options.pageSize;
    this.unclaimed = setTimeout(abandon, UNCLAIMED_STREAM_MS, this);
    this.unclaimed.unref();
    if (this.signal.aborted) this.abandon();
    else this.signal.addEventListener("abort", this, { once: true });
  }

  /** Ends a stream nobody started reading (see UNCLAIMED_STREAM_MS). */
  abandon() {
    if (this.claim !== "waiting") return;
    this.claim = "abandoned";
    clearTimeout(this.unclaimed);
    this.unclaimed = undefined;
    this.signal.removeEventListener("abort", this);
    this.end();
  }

  /** The signal aborted: a stream not yet iterated is released now, not when its timer runs out. */
  handleEvent() {
    this.abandon();
  }

  private end() {
    this.fanout.unlisten(this.channel.id, this.inbox);
    this.subscriber.end();
  }

  async *run(range: RetainedRange) {
    if (this.claim === "abandoned") return;
    this.claim = "claimed";
    if (this.socket) expectStartedFrame(this);
    clearTimeout(this.unclaimed);
    this.unclaimed = undefined;
    this.signal.removeEventListener("abort", this);
    const { metrics, signal, inbox } = this;
    metrics.subscriptions.inc();
    try {
      if (this.afterSeq === null) {
        this.cursor = range.lastSeq;
      } else if (this.afterSeq > range.lastSeq) {
        yield this.reset("unknown", range.oldestSeq, range.lastSeq);
        this.cursor = range.lastSeq;
      } else {
        if (this.otherEpoch) yield this.reset("unknown", range.oldestSeq, 0);
        const caughtUp = yield* this.catchUp(this.afterSeq, range.lastSeq);
        if (caughtUp === null) return;
        this.cursor = caughtUp;
      }

      while (!signal.aborted) {
        if (inbox.takeRevoked() && !(await this.subscriber.stillAllowed())) {
          throw new TRPCError({
            code: "FORBIDDEN",
            message: `your access to ${this.channel.name} was revoked`,
          });
        }
        if (inbox.takeLost()) {
          metrics.resyncs.inc();
          const caughtUp = yield* this.catchUp(this.cursor, this.cursor);
          if (caughtUp === null) return;
          this.cursor = caughtUp;
          continue;
        }
        const message = inbox.take();
        if (!message) {
          if (inbox.channelDeleted) {
            throw new TRPCError({ code: "NOT_FOUND", message: `channel ${this.channel.name} was deleted` });
          }
          await inbox.wait(signal, this);
          continue;
        }
        if (message.seq <= this.cursor) continue;
        if (message.seq > this.cursor + 1) {
          const caughtUp = yield* this.catchUp(this.cursor, message.seq - 1);
          if (caughtUp === null) return;
          this.cursor = caughtUp;
        }
        if (message.seq <= this.cursor) continue;
        if (!(await this.hasRoom())) return;
        this.observeLatency(message);
        yield this.deliver(message);
        this.cursor = message.seq;
      }
    } finally {
      metrics.subscriptions.dec();
      this.end();
    }
  }

  startedAs(framePrefix: string, requestId: WsResponse["id"]) {
    this.framePrefix = framePrefix;
    if (this.socket?.compactFrames === true) this.compactFramePrefix = compactPrefix(requestId);
  }

  /** The live path (see the class comment): the next message in order, while the socket has room. */
  offer(message: ChannelMessage, writes: LiveWrites): boolean {
    const { socket, framePrefix } = this;
    // No signal check: an abort wakes the inbox, which then offers nothing more (inbox.ts).
    if (socket === undefined || framePrefix === undefined) return false;
    if (message.seq <= this.cursor) return true;
    if (message.seq !== this.cursor + 1 || socket.bufferedAmount > this.maxBufferedBytes) return false;
    const frame = liveFrame(message, framePrefix, this.compactFramePrefix);
    if (frame === undefined) return false;
    socket.sendText(frame);
    writes.wrote(Date.now());
    this.cursor = message.seq;
    return true;
  }

  private observeLatency(message: ChannelMessage) {
    this.metrics.deliveryLatency.observe((Date.now() - message.sentAt.getTime()) / 1000);
  }

  private reset(reason: ChannelReset["reason"], oldestSeq: number | null, atSeq: number) {
    return tracked<ChannelReset>(messageId(this.channel.id, atSeq), {
      type: "reset",
      channel: this.channel.name,
      reason,
      oldestSeq,
    });
  }

  private deliver(message: ChannelMessage) {
    this.metrics.deliveries.inc();
    return tracked(message.id, message);
  }

  /** False once the socket stayed full too long and was closed: the stream ends, the client resumes. */
  private async hasRoom() {
    const { socket, signal } = this;
    if (!socket || socket.bufferedAmount <= this.maxBufferedBytes) return true;
    const limits = { maxBufferedBytes: this.maxBufferedBytes, timeoutMs: this.slowConsumerTimeoutMs };
    const room = await waitForRoom(socket, limits, signal);
    if (!room && !signal.aborted) this.metrics.slowConsumersDropped.inc();
    return room;
  }

  /** Replays stored messages after `from`; ends at `head` at least, announcing what retention took. */
  private async *catchUp(from: number, head: number) {
    const { channel, signal } = this;
    let cursor = from;
    for (;;) {
      const rows = await this.subscriber.store().readMessages(channel.id, cursor, this.pageSize, new Date());
      for (const row of rows) {
        if (!(await this.hasRoom())) return null;
        if (row.seq > cursor + 1) yield this.reset("retention", row.seq, row.seq - 1);
        yield this.deliver(toChannelMessage(row, channel.name));
        cursor = row.seq;
      }
      if (rows.length < this.pageSize || signal.aborted) break;
    }
    if (cursor < head) {
      yield this.reset("retention", null, head);
      cursor = head;
    }
    return cursor;
  }
}
