export type { Bus } from "./bus.ts";
export { MemoryBus } from "./memory-bus.ts";
