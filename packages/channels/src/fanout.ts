import type { Bus } from "@wedsync/bus";
import type { FanoutListener } from "./inbox.ts";
import type { ChannelMessage } from "./message.ts";
import { decodeMessage, encodeMessage } from "./wire-format.ts";

const topicOf = (channelId: string) => `ch:${channelId}`;
/** Every instance listens here for the whole of its life. */
const REVOCATIONS = "ctl:revocations";

/**
 * This instance's side of fan-out: one bus subscription per channel while at least one local
 * subscriber listens, each frame decoded once and handed to every local listener.
 */
export class LocalFanout {
  private readonly listeners = new Map<string, Set<FanoutListener>>();
  private readonly confirming = new Map<string, Promise<void>>();

  constructor(private readonly bus: Bus) {
    bus.onFrame((topic, frame) => this.dispatch(topic, frame));
    bus.onResync(() => {
      for (const set of this.listeners.values()) for (const listener of set) listener.resync();
    });
  }

  /** Subscribes the instance-wide control topic; call once before serving. */
  start(): Promise<void> {
    return this.bus.subscribe(REVOCATIONS);
  }

  /** Tells every instance that `userId` lost its grant on the channel. */
  revoke(channelId: string, userId: string): Promise<void> {
    return this.bus.publish(REVOCATIONS, JSON.stringify({ channelId, userId }));
  }

  publish(channelId: string, message: ChannelMessage): Promise<void> {
    return this.bus.publish(topicOf(channelId), encodeMessage(message));
  }

  /** Resolves once live messages for the channel reach the listener; call the result to stop. */
  async listen(channelId: string, listener: FanoutListener): Promise<() => void> {
    const topic = topicOf(channelId);
    let set = this.listeners.get(topic);
    if (!set) {
      set = new Set();
      this.listeners.set(topic, set);
      const confirmed = this.bus.subscribe(topic).finally(() => this.confirming.delete(topic));
      this.confirming.set(topic, confirmed);
    }
    set.add(listener);
    const stop = () => this.unlisten(topic, listener);
    try {
      await this.confirming.get(topic);
    } catch (error) {
      stop();
      throw error;
    }
    return stop;
  }

  /** Channels with at least one local listener, and how many listeners in all. */
  counts(): { channels: number; listeners: number } {
    let listeners = 0;
    for (const set of this.listeners.values()) listeners += set.size;
    return { channels: this.listeners.size, listeners };
  }

  private unlisten(topic: string, listener: FanoutListener) {
    const set = this.listeners.get(topic);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(topic);
    this.bus.unsubscribe(topic).catch(() => {
      // A failed unsubscribe only leaves frames this instance ignores.
    });
  }

  private dispatch(topic: string, frame: string) {
    if (topic === REVOCATIONS) return this.dispatchRevocation(frame);
    const set = this.listeners.get(topic);
    if (!set) return;
    const message = decodeMessage(frame);
    for (const listener of set) listener.deliver(message);
  }

  private dispatchRevocation(frame: string) {
    const { channelId, userId } = JSON.parse(frame) as { channelId: string; userId: string };
    for (const listener of this.listeners.get(topicOf(channelId)) ?? []) {
      if (listener.userId === userId) listener.revoke();
    }
  }
}
