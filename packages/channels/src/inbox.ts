import type { LiveWrites } from "./live-writes.ts";
import type { ChannelMessage } from "./message.ts";
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
}

/** Takes live messages straight to the subscriber's socket while its stream has nothing queued. */
export interface LiveWriter {
  /** True when the message was written (or was one the subscriber already has); false queues it. */
  offer(message: ChannelMessage, writes: LiveWrites): boolean;
}

/**
 * A bounded per-subscriber queue. When it would overflow it drops everything and flags a
 * resync, so memory stays bounded and the subscriber recovers from the durable store.
 */
export class Inbox implements FanoutListener {
  private items: ChannelMessage[] = [];
  private head = 0;
  private lost = false;
  private revoked = false;
  private writer: LiveWriter | undefined;
  private readonly waiter = new Waiter();

  constructor(
    private readonly capacity: number,
    readonly userId: string,
  ) {}

  deliver(message: ChannelMessage, writes: LiveWrites) {
    if (this.lost) return;
    if (this.writer?.offer(message, writes)) return;
    if (this.items.length - this.head >= this.capacity) return this.resync();
    this.items.push(message);
    this.notify();
  }

  resync() {
    this.lost = true;
    this.items = [];
    this.head = 0;
    this.notify();
  }

  revoke() {
    this.revoked = true;
    this.notify();
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
  wait(signal: AbortSignal, writer?: LiveWriter): Promise<void> {
    if (this.lost || this.revoked || this.head < this.items.length) return Promise.resolve();
    this.writer = writer;
    return this.waiter.wait(signal);
  }

  private notify() {
    this.writer = undefined;
    this.waiter.wake();
  }
}
