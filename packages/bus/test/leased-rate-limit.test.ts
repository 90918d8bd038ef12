import { RateLimiterMemory } from "rate-limiter-flexible";
import { describe, expect, it } from "vitest";
import { leasedRateLimiter } from "../src/leased-rate-limit.ts";

/** A shared counter (as Redis would be) that counts the round trips made to it. */
function sharedCounter(points: number) {
  const limiter = new RateLimiterMemory({ points, duration: 60 });
  const counter = {
    calls: 0,
    consume(key: string, n: number) {
      counter.calls++;
      return limiter.consume(key, n);
    },
  };
  return counter;
}

async function allowedOf(limiter: { consume(key: string): Promise<{ allowed: boolean }> }, times: number) {
  let allowed = 0;
  for (let i = 0; i < times; i++) if ((await limiter.consume("k")).allowed) allowed++;
  return allowed;
}

describe("leased rate limiter", () => {
  it("allows exactly the rule's points per window and refuses the rest, with a retry delay", async () => {
    const counter = sharedCounter(1_000);
    const limiter = leasedRateLimiter(counter, { name: "t", points: 1_000, durationSeconds: 60 });
    expect(await allowedOf(limiter, 1_000)).toBe(1_000);
    const refused = await limiter.consume("k");
    expect(refused.allowed).toBe(false);
    expect(refused.allowed === false && refused.retryAfterMs).toBeGreaterThan(0);
  });

  it("asks the shared counter once per lease of 1% of the points, not once per consume", async () => {
    const counter = sharedCounter(10_000);
    const limiter = leasedRateLimiter(counter, { name: "t", points: 10_000, durationSeconds: 60 });
    await Promise.all(Array.from({ length: 1_000 }, () => limiter.consume("k")));
    expect(counter.calls).toBe(10);
  });

  it("two instances on one counter never allow more than the points between them", async () => {
    const counter = sharedCounter(500);
    const rule = { name: "t", points: 500, durationSeconds: 60 };
    const [a, b] = [leasedRateLimiter(counter, rule), leasedRateLimiter(counter, rule)];
    let allowed = 0;
    for (let i = 0; i < 600; i++) if ((await (i % 2 ? a : b).consume("k")).allowed) allowed++;
    expect(allowed).toBe(500);
  });

  it("a lease reaching past the limit gets the points still within it", async () => {
    const counter = sharedCounter(250);
    const rule = { name: "t", points: 250, durationSeconds: 60 };
    // Another instance spent 249 of the 250 points; this one leases 2 at a time.
    await counter.consume("k", 249);
    const limiter = leasedRateLimiter(counter, rule);
    expect(await allowedOf(limiter, 3)).toBe(1);
  });

  it("rules of under 200 points take one point per round trip", async () => {
    const counter = sharedCounter(100);
    const limiter = leasedRateLimiter(counter, { name: "t", points: 100, durationSeconds: 60 });
    expect(await allowedOf(limiter, 101)).toBe(100);
    expect(counter.calls).toBe(101);
  });
});
