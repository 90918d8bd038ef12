import { describe, expect, it } from "vitest";
import { jitteredBackoff } from "../src/channels-client.ts";

describe("jitteredBackoff", () => {
  it("grows with the attempt and never exceeds 30 s", () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delay = jitteredBackoff(attempt);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it("spreads a crowd of clients instead of reconnecting them in lockstep", () => {
    const delays = Array.from({ length: 1_000 }, () => jitteredBackoff(5));
    const distinct = new Set(delays).size;
    const sorted = [...delays].sort((a, b) => a - b);
    expect(distinct).toBeGreaterThan(500);
    // Roughly uniform over [0, 16 s]: the middle half spans several seconds.
    expect(sorted[750]! - sorted[250]!).toBeGreaterThan(4_000);
  });
});
