import { describe, expect, it } from "vitest";
import { VerifiedTokens } from "../src/verified-tokens.ts";

const at = (ms: number) => ({ expiresAt: new Date(ms) });

describe("VerifiedTokens", () => {
  it("serves a verified token until it expires, and no longer", () => {
    const cache = new VerifiedTokens(10, 60_000);
    cache.set("t", at(10_000), 0);
    expect(cache.get("t", 9_999)).toEqual(at(10_000));
    expect(cache.get("t", 10_000)).toBeUndefined();
    expect(cache.get("t", 5_000)).toBeUndefined(); // an expired entry is gone for good
  });

  it("never serves longer than maxAge, however long the token lives", () => {
    const cache = new VerifiedTokens(10, 1_000);
    cache.set("t", at(3_600_000), 0);
    expect(cache.get("t", 999)).toBeDefined();
    expect(cache.get("t", 1_000)).toBeUndefined();
  });

  it("keeps nothing for a token already expired, and drops the oldest entry when full", () => {
    const cache = new VerifiedTokens(2, 60_000);
    cache.set("old", at(5), 10);
    expect(cache.get("old", 10)).toBeUndefined();
    cache.set("a", at(100), 0);
    cache.set("b", at(100), 0);
    cache.set("c", at(100), 0);
    expect([cache.get("a", 1), cache.get("b", 1), cache.get("c", 1)].map(Boolean)).toEqual([
      false,
      true,
      true,
    ]);
  });

  it("a different token text (another signature) is a miss", () => {
    const cache = new VerifiedTokens(10, 60_000);
    cache.set("header.payload.sig1", at(100), 0);
    expect(cache.get("header.payload.sig2", 1)).toBeUndefined();
  });
});
