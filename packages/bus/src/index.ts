export type { Bus } from "./bus.ts";
export { MemoryBus } from "./memory-bus.ts";
export { RedisBus, type RedisBusOptions } from "./redis-bus.ts";
