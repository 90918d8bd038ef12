import { createHmac } from "node:crypto";
import { type JWTPayload, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { hs256Verifier } from "../src/hs256.ts";

const secret = "hs256-test-secret-with-enough-bytes";
const options = {
  clockTolerance: 5,
  requiredClaims: ["exp", "sub"],
  issuer: "wedsync",
  audience: "channels",
};
const verify = hs256Verifier(secret, options);
const bytes = (text: string) => new TextEncoder().encode(text);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function sign(claims: JWTPayload, header: Record<string, unknown> = { alg: "HS256" }, key = secret) {
  const signingInput = `${b64(header)}.${b64(claims)}`;
  return `${signingInput}.${createHmac("sha256", key).update(signingInput).digest("base64url")}`;
}

const valid = { sub: "u1", iss: "wedsync", aud: "channels", exp: now() + 60, role: "supplier" };

/** What jose's own jwtVerify says of a token: the payload, or the name of its refusal. */
async function joseVerdict(token: string) {
  try {
    const { payload } = await jwtVerify(token, bytes(secret), { ...options, algorithms: ["HS256"] });
    return payload;
  } catch (error) {
    return (error as Error).name;
  }
}

function ourVerdict(token: string) {
  try {
    return verify(token);
  } catch (error) {
    return (error as Error).name;
  }
}

describe("HS256 verification", () => {
  it("accepts what jose signs, with the same payload", async () => {
    const token = await new SignJWT({ role: "supplier", suppliers: ["s1"] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject("u1")
      .setIssuer("wedsync")
      .setAudience("channels")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(bytes(secret));
    expect(verify(token)).toEqual(await joseVerdict(token));
    expect(verify(token)).toMatchObject({ sub: "u1", role: "supplier", suppliers: ["s1"] });
  });

  const good = sign(valid);
  const [goodHeader, goodPayload, goodSignature] = good.split(".") as [string, string, string];
  const refused: Record<string, string> = {
    "another secret": sign(valid, { alg: "HS256" }, "another-secret-with-enough-bytes"),
    "a payload changed after signing": `${goodHeader}.${b64({ ...valid, sub: "admin" })}.${goodSignature}`,
    "alg none, unsigned": `${b64({ alg: "none" })}.${goodPayload}.`,
    "alg none, signed": sign(valid, { alg: "none" }),
    "alg HS512": sign(valid, { alg: "HS512" }),
    "a critical extension": sign(valid, { alg: "HS256", crit: ["b64"], b64: false }),
    "a stray character after the signature": `${good}A`,
    "a signature cut short": good.slice(0, -2),
    "no signature": `${goodHeader}.${goodPayload}`,
    "four parts": `${good}.x`,
    "a header that is not JSON": `${Buffer.from("{").toString("base64url")}.${goodPayload}.${goodSignature}`,
    "a payload that is not JSON": sign("not json" as unknown as JWTPayload),
    expired: sign({ ...valid, exp: now() - 60 }),
    "not valid yet": sign({ ...valid, nbf: now() + 60 }),
    "no exp": sign({ sub: "u1", iss: "wedsync", aud: "channels" }),
    "no sub": sign({ ...valid, sub: undefined }),
    "another issuer": sign({ ...valid, iss: "elsewhere" }),
    "another audience": sign({ ...valid, aud: "elsewhere" }),
    garbage: "not-a-jwt",
    empty: "",
  };

  it.each(Object.entries(refused))("refuses %s, as jose's jwtVerify does", async (_label, token) => {
    const ours = ourVerdict(token);
    expect(typeof ours).toBe("string");
    expect(typeof (await joseVerdict(token))).toBe("string");
  });

  it("takes the clock tolerance as jose does: expired 3 s ago passes, with the payload jose gives", async () => {
    const token = sign({ ...valid, exp: now() - 3 });
    expect(ourVerdict(token)).toEqual(await joseVerdict(token));
    expect(ourVerdict(token)).toMatchObject({ sub: "u1" });
  });
});
