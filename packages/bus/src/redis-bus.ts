import { Redis, type RedisOptions } from "ioredis";
import type { Bus } from "./bus.ts";
import { type RateLimitRule, redisRateLimiter } from "./rate-limit.ts";
import { RedisPresence } from "./redis-presence.ts";

export interface RedisBusOptions {
  url: string;
  /** Prefix for every Redis channel, so several deployments can share one Redis. */
  prefix?: string;
  onError?: (error: Error) => void;
}

/**
 * Fan-out over Redis pub/sub: one publisher and one subscriber connection per instance. Pub/sub
 * is at-most-once, so a reconnect of the subscriber triggers a resync (receivers re-read the
 * store), and frames that failed to publish during an outage are re-sent once Redis is back
 * (receivers drop what they already have by seq).
 */
export class RedisBus implements Bus {
  readonly kind = "redis";
  readonly presence: RedisPresence;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private frameHandlers: Array<(topic: string, frame: string) => void> = [];
  private resyncHandlers: Array<() => void> = [];
  /** Latest frame per topic that could not be published; re-sent when the publisher reconnects. */
  private readonly unsent = new Map<string, string>();
  private subscriberWasReady = false;

  constructor(options: RedisBusOptions) {
    this.prefix = options.prefix ?? "wedsync:";
    const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 2, replyMapping: "legacy" };
    // No offline queue for publishes: a broadcast is already durable and must not wait for Redis.
    // Auto-pipelining: the commands of one event-loop turn (rate-limit checks and publishes of the
    // broadcasts that arrived or committed together) go in one socket write, not one write each.
    this.pub = new Redis(options.url, { ...common, enableOfflineQueue: false, enableAutoPipelining: true });
    this.sub = new Redis(options.url, { ...common, autoResubscribe: true });
    for (const connection of [this.pub, this.sub])
      connection.on("error", (error) => options.onError?.(error));
    this.sub.on("message", (channel: string, frame: string) => {
      const topic = channel.slice(this.prefix.length);
      for (const handler of this.frameHandlers) handler(topic, frame);
    });
    this.sub.on("ready", () => {
      if (this.subscriberWasReady) for (const handler of this.resyncHandlers) handler();
      this.subscriberWasReady = true;
    });
    this.pub.on("ready", () => void this.resendUnsent());
    this.presence = new RedisPresence(this.pub, this.prefix);
  }

  async connect(): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()]);
  }

  get healthy(): boolean {
    return this.pub.status === "ready" && this.sub.status === "ready";
  }

  mayReach(_topic: string) {
    return true;
  }

  async publish(topic: string, frame: string) {
    try {
      await this.pub.publish(this.prefix + topic, frame);
    } catch (error) {
      this.unsent.set(topic, frame);
      throw error;
    }
  }

  async subscribe(topic: string) {
    await this.sub.subscribe(this.prefix + topic);
  }

  async unsubscribe(topic: string) {
    await this.sub.unsubscribe(this.prefix + topic);
  }

  onFrame(handler: (topic: string, frame: string) => void) {
    this.frameHandlers.push(handler);
  }

  onResync(handler: () => void) {
    this.resyncHandlers.push(handler);
  }

  rateLimiter(rule: RateLimitRule) {
    return redisRateLimiter(rule, this.pub, this.prefix);
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    // SET NX: atomic across instances; the mark expires by itself.
    const set = await this.pub.set(
      `${this.prefix}once:${key}`,
      "1",
      "PX",
      Math.max(1, Math.ceil(ttlMs)),
      "NX",
    );
    return set === "OK";
  }

  async ping(): Promise<void> {
    await this.pub.ping();
  }

  async close() {
    this.frameHandlers = [];
    this.resyncHandlers = [];
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private async resendUnsent() {
    for (const [topic, frame] of [...this.unsent]) {
      this.unsent.delete(topic);
      await this.publish(topic, frame).catch(() => {});
    }
  }
}
