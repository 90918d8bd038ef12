import type { LiveWrites } from "./live-writes.ts";
import type { ChannelMessage } from "./message.ts";
import type { StopSignal } from "./stop-signal.ts";
import { Waiter } from "./waiter.ts";

/** Receives live messages for one subscriber of one channel. */
export interface FanoutListener {
  /** Whose stream this is, so a revocation can reach it. */
  readonly userId: string;
  /** `writes` collects what the subscriber's socket was written live, for the broadcast's metrics. */
  deliver(message: ChannelMessage, writes: LiveWrites): void;
  /** Live messages may have been lost: the subscriber must re-read the store. */
  resync(): void;
  /** The user's grant on the channel was revoked: the stream re-checks its access. */
  revoke(): void;
  /** The channel was deleted: the stream ends (NOT_FOUND) once it has sent what it holds. */
  channelGone(): void;
}

/** Takes live messages straight to the subscriber's socket while its stream has nothing queued. */
export interface LiveWriter {
  /** True when the message was written (or was one the subscriber already has); false queues it. */
  offer(message: ChannelMessage, writes: LiveWrites): boolean;
}

/**
 * A bounded per-subscriber queue. When it would overflow it drops everything and flags a
 * resync, so memory stays bounded and the subscriber recovers from the durable store.
 *
 * It is its reader's Waiter, so that whatever wakes the reader (a message the writer refused, a
 * resync, a revocation, the stream's signal aborting) ends the live path in the same step: a stream
 * that stopped is never offered another message, and the writer need not ask its AbortSignal on
 * every message (the getter's brand check was ~0.3 µs of server CPU per delivery).
 */
export class Inbox extends Waiter implements FanoutListener {
  private items: ChannelMessage[] = [];
  private head = 0;
  private lost = false;
  private revoked = false;
  private gone = false;
  private writer: LiveWriter | undefined;

  constructor(
    private readonly capacity: number,
    readonly userId: string,
  ) {
    super();
  }

  deliver(message: ChannelMessage, writes: LiveWrites) {
    if (this.lost) return;
    if (this.writer?.offer(message, writes)) return;
    if (this.items.length - this.head >= this.capacity) return this.resync();
    this.items.push(message);
    this.wake();
  }

  resync() {
    this.lost = true;
    this.items = [];
    this.head = 0;
    this.wake();
  }

  revoke() {
    this.revoked = true;
    this.wake();
  }

  channelGone() {
    this.gone = true;
    this.wake();
  }

  /** Whether the channel was deleted; stays true. */
  get channelDeleted(): boolean {
    return this.gone;
  }

  /** True once after a revocation reached this stream. */
  takeRevoked(): boolean {
    const revoked = this.revoked;
    this.revoked = false;
    return revoked;
  }

  /** True once after messages were dropped; the caller then reads the store. */
  takeLost(): boolean {
    const lost = this.lost;
    this.lost = false;
    return lost;
  }

  take(): ChannelMessage | undefined {
    if (this.head === this.items.length) return undefined;
    const message = this.items[this.head++];
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return message;
  }

  /**
   * Resolves when something arrives or the signal aborts; never rejects. While it waits with nothing
   * queued, live messages go to `writer` first, and only what the writer refuses wakes the reader.
   */
  override wait(signal: StopSignal, writer?: LiveWriter): Promise<void> {
    if (this.lost || this.revoked || this.head < this.items.length) return Promise.resolve();
    const woken = super.wait(signal);
    // Set after super.wait, which settles an earlier wait first (and so clears the writer).
    if (!signal.aborted) this.writer = writer;
    return woken;
  }

  override wake() {
    this.writer = undefined;
    super.wake();
  }
}
