import type { PresenceStore } from "./presence.ts";
import type { RateLimiter, RateLimitRule } from "./rate-limit.ts";

/**
 * Live fan-out between instances. At-most-once: a subscriber that misses a frame notices by
 * sequence number and reads the durable store, so the bus is never the only copy of a message.
 */
export interface Bus {
  readonly kind: "memory" | "redis";
  /** Sends a frame to every instance subscribed to the topic (including this one). */
  publish(topic: string, frame: string): Promise<void>;
  /**
   * False only when a frame published on the topic now would reach nobody (the in-process bus: no
   * subscriber here), so that a publisher can skip making it. Another instance's subscriptions are
   * not known here, so a bus between instances answers true.
   */
  mayReach(topic: string): boolean;
  /** Resolves once the subscription is confirmed: frames published afterwards will arrive. */
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** The instance's single receiver of frames. */
  onFrame(handler: (topic: string, frame: string) => void): void;
  /** Called when frames may have been lost (reconnect): receivers should re-read the store. */
  onResync(handler: () => void): void;
  /** Presence shared by every instance on this bus. */
  readonly presence: PresenceStore;
  /** A limiter whose counters are shared by every instance on this bus. */
  rateLimiter(rule: RateLimitRule): RateLimiter;
  /**
   * Marks `key` as used for `ttlMs`, shared by every instance on this bus: true the first time,
   * false while the mark lasts (e.g. a webhook signature already accepted: replay protection).
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Rejects when the bus cannot currently carry frames (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
