import type { Bus } from "./bus.ts";
import { MemoryPresence } from "./presence.ts";
import { memoryRateLimiter, type RateLimitRule } from "./rate-limit.ts";

/** In-process bus for the embedded default: one instance, nothing crosses a process boundary. */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  readonly presence = new MemoryPresence();
  private readonly topics = new Set<string>();
  private frameHandlers: Array<(topic: string, frame: string) => void> = [];
  /** claimOnce marks: key -> expiry (ms since epoch); expired marks are swept as calls come in. */
  private readonly claims = new Map<string, number>();
  private nextClaimSweep = 0;

  async publish(topic: string, frame: string) {
    if (!this.topics.has(topic)) return;
    for (const handler of this.frameHandlers) handler(topic, frame);
  }

  mayReach(topic: string) {
    return this.topics.has(topic);
  }

  async subscribe(topic: string) {
    this.topics.add(topic);
  }

  async unsubscribe(topic: string) {
    this.topics.delete(topic);
  }

  onFrame(handler: (topic: string, frame: string) => void) {
    this.frameHandlers.push(handler);
  }

  onResync(_handler: () => void) {
    // Nothing is ever lost in-process.
  }

  rateLimiter(rule: RateLimitRule) {
    return memoryRateLimiter(rule);
  }

  async claimOnce(key: string, ttlMs: number) {
    const now = Date.now();
    if (now >= this.nextClaimSweep) {
      for (const [k, expiresAt] of this.claims) if (expiresAt <= now) this.claims.delete(k);
      this.nextClaimSweep = now + 1_000;
    }
    const expiresAt = this.claims.get(key);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.claims.set(key, now + Math.max(1, ttlMs));
    return true;
  }

  async ping() {}

  async close() {
    this.topics.clear();
    this.frameHandlers = [];
    this.claims.clear();
  }
}
