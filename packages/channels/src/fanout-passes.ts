import type { FanoutListener } from "./inbox.ts";
import { LiveWrites } from "./live-writes.ts";
import type { ChannelMessage } from "./message.ts";

/**
 * A channel with more listeners than this on the instance is fanned out in passes (FanoutPasses);
 * a smaller one at once. A delivery is a socket write of 10-11 µs (session 23's profile): this many
 * take about 2.5 ms, a thousand about 10.
 */
export const FANOUT_PASS_LISTENERS = 256;

/**
 * Deliveries a channel may have waiting for its next pass before a publisher waits for its message's
 * pass: a publisher is answered once its message is stored, and must not outrun the fan-out.
 */
export const FANOUT_BACKLOG = 5_000;

/** A channel's messages waiting for its next pass, in seq order, and who waits for them to go out. */
interface Pending {
  messages: ChannelMessage[];
  delivered: Array<() => void>;
}

const NO_LISTENERS: ReadonlySet<FanoutListener> = new Set();

/**
 * Local fan-out of each channel's messages to its listeners.
 *
 * A channel of up to FANOUT_PASS_LISTENERS listeners is handed each message at once, as it arrives.
 * A bigger one is handed its messages in passes, the first after the turn that stored them: the
 * publishers' answers go out before the fan-out's hundreds or thousands of writes, and every message
 * stored before a pass starts goes out in it, several frames to a socket in one write (turn-cork.ts). At
 * 1,000 subscribers the bench's throughput went from 98.6k to 132k deliveries/s (session 29, the
 * same passes in a first form that still had a time check per turn, never reached).
 * Between two passes the event loop gets a turn, in which the next messages are stored.
 *
 * Each pass hands every listener its messages in seq order, and passes follow one another, so every
 * listener gets the channel's messages in order. A listener that joins between a message's store and
 * its pass may be handed it although it read it from the store; streams drop what their cursor has
 * passed. One that leaves before the pass is not handed it.
 */
export class FanoutPasses {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly listenersOf: (topic: string) => ReadonlySet<FanoutListener> | undefined,
    /** Each message's writes, once every listener has had it. */
    private readonly onDelivered: (writes: LiveWrites, message: ChannelMessage) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /**
   * Hands `message` to the topic's listeners, now or in the channel's next pass. Undefined, or, when
   * the channel's backlog is over FANOUT_BACKLOG, a promise that resolves once every listener has had
   * the message: its publisher waits for that.
   */
  deliver(topic: string, message: ChannelMessage): Promise<void> | undefined {
    const listeners = this.listenersOf(topic);
    let pending = this.pending.get(topic);
    if (pending === undefined) {
      if (listeners === undefined) return undefined;
      if (listeners.size <= FANOUT_PASS_LISTENERS) return void this.handOut(listeners, [message]);
      pending = { messages: [], delivered: [] };
      this.pending.set(topic, pending);
      // Once this turn's callbacks are done, so that the messages they store share the pass.
      process.nextTick(() => this.pass(topic));
    }
    pending.messages.push(message);
    if (pending.messages.length * (listeners?.size ?? 0) <= FANOUT_BACKLOG) return undefined;
    return new Promise<void>((resolve) => pending.delivered.push(resolve));
  }

  /** Hands out what is pending for `topic`; the next pass comes after a turn of the event loop. */
  private pass(topic: string) {
    const pending = this.pending.get(topic);
    if (pending === undefined) return;
    if (pending.messages.length === 0) return void this.pending.delete(topic);
    const { messages, delivered } = pending;
    pending.messages = [];
    pending.delivered = [];
    this.handOut(this.listenersOf(topic) ?? NO_LISTENERS, messages);
    for (const resolve of delivered) resolve();
    setImmediate(() => this.pass(topic));
  }

  private handOut(listeners: ReadonlySet<FanoutListener>, messages: ChannelMessage[]) {
    const writes = messages.map(() => new LiveWrites());
    for (const listener of listeners) {
      for (let i = 0; i < messages.length; i++) this.handTo(listener, messages[i]!, writes[i]!);
    }
    for (let i = 0; i < messages.length; i++) this.onDelivered(writes[i]!, messages[i]!);
  }

  /** One listener's failure must not keep the message from the others (nor end the pass). */
  private handTo(listener: FanoutListener, message: ChannelMessage, writes: LiveWrites) {
    try {
      listener.deliver(message, writes);
    } catch (error) {
      this.onError(error);
    }
  }
}
