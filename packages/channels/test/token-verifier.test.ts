import { describe, expect, it } from "vitest";
import { createTokenVerifier, mintToken, TokenError, type VerifiedIdentity } from "../src/auth.ts";
import type { Identity } from "../src/identity.ts";
import { VerifiedTokens } from "../src/verified-tokens.ts";

const secret = "token-verifier-test-secret-long-enough";
const claims = (sub: string): Identity => ({
  sub,
  role: "supplier",
  tier: "paid",
  suppliers: ["s1"],
  couples: [],
  venues: [],
});

describe("createTokenVerifier", () => {
  it("remembers a verified token for the next request, but not one verified once (a WebSocket's)", async () => {
    const verified = new VerifiedTokens<VerifiedIdentity>();
    const verify = createTokenVerifier({ secret }, verified);
    const connection = await mintToken(secret, claims("on-a-socket"));
    expect(await verify(connection, { remember: false })).toMatchObject({ sub: "on-a-socket" });
    expect(verified.get(connection)).toBeUndefined();

    const request = await mintToken(secret, claims("over-http"));
    const identity = await verify(request);
    expect(identity).toMatchObject({ sub: "over-http", suppliers: ["s1"] });
    expect(verified.get(request)).toBe(identity);
    // A remembered token serves a connection too, without being checked again.
    expect(await verify(request, { remember: false })).toBe(identity);
  });

  it("refuses a token signed with another secret, and remembers nothing of it", async () => {
    const verified = new VerifiedTokens<VerifiedIdentity>();
    const verify = createTokenVerifier({ secret }, verified);
    const forged = await mintToken("another-secret-that-is-long-enough", claims("forger"));
    await expect(verify(forged)).rejects.toBeInstanceOf(TokenError);
    expect(verified.get(forged)).toBeUndefined();
  });
});
