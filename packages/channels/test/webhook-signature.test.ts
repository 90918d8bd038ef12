import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { computeSignature, signWebhook, verifyWebhookSignature } from "../src/webhook-signature.ts";

const secret = "whsec_test_0123456789abcdefghijklmnop";
const other = "whsec_other_0123456789abcdefghijklmno";
const body = JSON.stringify({ channelName: "form:response:f1:s1", event: "form.response" });
const t = 1_800_000_000;

describe("webhook signatures", () => {
  it("v1 is the hex HMAC-SHA256 of '<t>.<body>' (what `openssl dgst -sha256 -hmac` prints)", () => {
    const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
    expect(computeSignature(secret, t, body)).toBe(expected);
    expect(computeSignature(secret, t, Buffer.from(body))).toBe(expected);
    expect(signWebhook(secret, body, t)).toBe(`t=${t},v1=${expected}`);
  });

  it("accepts a fresh, matching signature and reports which one matched", () => {
    const header = signWebhook(secret, body, t);
    const check = verifyWebhookSignature({ header, body, secrets: secret, now: t + 10 });
    expect(check).toEqual({
      ok: true,
      timestamp: t,
      signature: computeSignature(secret, t, body),
      secretIndex: 0,
    });
  });

  it("accepts timestamps up to 5 minutes away in either direction, not more", () => {
    const header = signWebhook(secret, body, t);
    for (const now of [t - 300, t + 300]) {
      expect(verifyWebhookSignature({ header, body, secrets: secret, now }).ok).toBe(true);
    }
    for (const now of [t - 301, t + 301, t + 86_400]) {
      expect(verifyWebhookSignature({ header, body, secrets: secret, now })).toMatchObject({
        ok: false,
        reason: "stale",
      });
    }
  });

  it("refuses a changed body, a wrong secret and a re-dated signature", () => {
    const header = signWebhook(secret, body, t);
    const now = t;
    expect(verifyWebhookSignature({ header, body: `${body} `, secrets: secret, now })).toMatchObject({
      ok: false,
      reason: "mismatch",
    });
    expect(verifyWebhookSignature({ header, body, secrets: other, now })).toMatchObject({
      ok: false,
      reason: "mismatch",
    });
    const redated = header.replace(`t=${t}`, `t=${t + 60}`);
    expect(verifyWebhookSignature({ header: redated, body, secrets: secret, now })).toMatchObject({
      ok: false,
      reason: "mismatch",
    });
  });

  it("supports rotation: several v1 values on the sender, several secrets on the receiver", () => {
    const both = signWebhook([other, secret], body, t);
    expect(both.split(",")).toHaveLength(3);
    const check = verifyWebhookSignature({ header: both, body, secrets: secret, now: t });
    expect(check).toMatchObject({ ok: true, signature: computeSignature(secret, t, body), secretIndex: 0 });

    const single = signWebhook(secret, body, t);
    expect(verifyWebhookSignature({ header: single, body, secrets: [other, secret], now: t })).toMatchObject({
      ok: true,
      secretIndex: 1,
    });
  });

  it("ignores unknown schemes but insists on t= and a well-formed v1=", () => {
    const v1 = computeSignature(secret, t, body);
    const ok = (header: string) => verifyWebhookSignature({ header, body, secrets: secret, now: t });
    expect(ok(`t=${t},v0=abc,v1=${v1}`).ok).toBe(true);
    expect(ok(` t=${t} , v1=${v1} `).ok).toBe(true);
    for (const header of [
      `v1=${v1}`,
      `t=${t}`,
      `t=${t},t=${t},v1=${v1}`,
      `t=-5,v1=${v1}`,
      `t=12.5,v1=${v1}`,
      `t=${t},v1=${v1.toUpperCase()}`,
      `t=${t},v1=${v1.slice(2)}`,
      `t=${t},v1=${"zz".repeat(32)}`,
      `t=${t};v1=${v1}`,
      "garbage",
      `t=${t},${Array.from({ length: 9 }, () => `v1=${v1}`).join(",")}`,
      `t=${t},v1=${v1},x=${"a".repeat(1_100)}`,
    ]) {
      expect(ok(header), header.slice(0, 80)).toMatchObject({ ok: false, reason: "malformed" });
    }
  });

  it("a missing or repeated header is refused", () => {
    expect(verifyWebhookSignature({ header: undefined, body, secrets: secret, now: t })).toMatchObject({
      ok: false,
      reason: "missing",
    });
    expect(verifyWebhookSignature({ header: "", body, secrets: secret, now: t })).toMatchObject({
      ok: false,
      reason: "missing",
    });
    const header = signWebhook(secret, body, t);
    expect(verifyWebhookSignature({ header: [header, header], body, secrets: secret, now: t })).toMatchObject(
      { ok: false, reason: "malformed" },
    );
  });

  it("signs raw bytes: a body that is not valid UTF-8 is still verified byte for byte", () => {
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const header = signWebhook(secret, bytes, t);
    expect(verifyWebhookSignature({ header, body: bytes, secrets: secret, now: t }).ok).toBe(true);
    expect(verifyWebhookSignature({ header, body: bytes.toString("utf8"), secrets: secret, now: t }).ok).toBe(
      false,
    );
  });

  describe("key ids (kid=)", () => {
    const keys = [
      { id: "k2", secret },
      { id: "k1", secret: other },
    ];

    it("a named key signs as t=,kid=,v1= with the same MAC: the kid only picks the key", () => {
      expect(signWebhook({ id: "k2", secret }, body, t)).toBe(
        `t=${t},kid=k2,v1=${computeSignature(secret, t, body)}`,
      );
    });

    it("with kid=, the named key must verify; any other key matching is not enough", () => {
      const k1 = verifyWebhookSignature({
        header: signWebhook(keys[1]!, body, t),
        body,
        secrets: keys,
        now: t,
      });
      expect(k1).toMatchObject({ ok: true, secretIndex: 1 });
      const claimsK2 = signWebhook({ id: "k2", secret: other }, body, t);
      expect(verifyWebhookSignature({ header: claimsK2, body, secrets: keys, now: t })).toMatchObject({
        ok: false,
        reason: "mismatch",
      });
    });

    it("without kid=, any configured key may verify", () => {
      for (const [index, key] of keys.entries()) {
        const header = signWebhook(key.secret, body, t);
        expect(verifyWebhookSignature({ header, body, secrets: keys, now: t })).toMatchObject({
          ok: true,
          secretIndex: index,
        });
      }
    });

    it("an unknown kid is refused before any MAC is compared, naming the kid", () => {
      const header = signWebhook({ id: "k0", secret }, body, t);
      expect(verifyWebhookSignature({ header, body, secrets: keys, now: t })).toEqual({
        ok: false,
        reason: "unknown-key",
        message: "no key with kid=k0 is configured",
      });
      // A receiver with unnamed secrets knows no kid at all.
      expect(verifyWebhookSignature({ header, body, secrets: secret, now: t })).toMatchObject({
        reason: "unknown-key",
      });
    });

    it("a kid that is empty, repeated, too long or outside A-Z a-z 0-9 _ . - is malformed", () => {
      const v1 = computeSignature(secret, t, body);
      for (const kid of ["kid=", "kid=k2,kid=k2", `kid=${"k".repeat(65)}`, "kid=k 2", "kid=k/2", "kid=kö"]) {
        const header = `t=${t},${kid},v1=${v1}`;
        expect(verifyWebhookSignature({ header, body, secrets: keys, now: t }), kid).toMatchObject({
          ok: false,
          reason: "malformed",
        });
      }
    });
  });
});
