import { describe, expect, it } from "vitest";
import { MemoryBus } from "../src/memory-bus.ts";
import { busContract } from "./bus.contract.ts";

busContract("memory", async () => new MemoryBus());

describe("MemoryBus", () => {
  it("reaches nobody on a topic nobody here subscribes to, before and after", async () => {
    const bus = new MemoryBus();
    expect(bus.mayReach("t")).toBe(false);
    await bus.subscribe("t");
    expect(bus.mayReach("t")).toBe(true);
    await bus.unsubscribe("t");
    expect(bus.mayReach("t")).toBe(false);
  });
});
