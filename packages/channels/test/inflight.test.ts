import { describe, expect, it } from "vitest";
import { Inflight } from "../src/inflight.ts";

describe("Inflight", () => {
  it("drains once running work finishes", async () => {
    const inflight = new Inflight();
    let finish!: () => void;
    const work = inflight.run(() => new Promise<void>((resolve) => (finish = resolve)));
    expect(inflight.size).toBe(1);
    const drained = inflight.drain(5_000);
    finish();
    await work;
    expect(await drained).toBe(true);
    expect(inflight.size).toBe(0);
  });

  it("gives up after the timeout when work hangs", async () => {
    const inflight = new Inflight();
    void inflight.run(() => new Promise(() => {}));
    expect(await inflight.drain(20)).toBe(false);
  });

  it("counts failed work as finished", async () => {
    const inflight = new Inflight();
    await expect(inflight.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await inflight.drain(10)).toBe(true);
  });
});
