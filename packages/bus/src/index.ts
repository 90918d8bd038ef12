export type { Bus } from "./bus.ts";
export { MemoryBus } from "./memory-bus.ts";
export { MemoryPresence, type PresenceEntry, type PresenceStore } from "./presence.ts";
export type { RateDecision, RateLimiter, RateLimitRule } from "./rate-limit.ts";
export { RedisBus, type RedisBusOptions } from "./redis-bus.ts";
