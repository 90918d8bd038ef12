import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signed webhooks, both directions: `X-WedSync-Signature: t=<unix seconds>,v1=<hex>` where the hex
 * is HMAC-SHA256(secret, "<t>.<raw body>"). The timestamp is inside the MAC, so a captured request
 * cannot be re-dated; a receiver refuses timestamps more than five minutes away from its clock and
 * remembers signatures it has accepted until they would be stale anyway (replay protection).
 *
 * Several `v1=` values may be sent (one per secret while a secret is being rotated); a request is
 * authentic when any of them matches any of the receiver's secrets. A receiver with several named keys
 * lets the sender say which one signed (`t=…,kid=<id>,v1=…`): then only that key may match, so a
 * retired key cannot be slipped in by a sender that names the current one.
 */
export const SIGNATURE_HEADER = "x-wedsync-signature";
/** How far a signature's timestamp may be from the receiver's clock, in either direction. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const MAX_HEADER_LENGTH = 1_024;
const MAX_SIGNATURES = 8;
const TIMESTAMP = /^\d{1,12}$/;
const HEX_MAC = /^[0-9a-f]{64}$/;
/** What a key id may look like, in configuration and in `kid=`. */
export const WEBHOOK_KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** A named secret; the name travels in `kid=`, the secret never does. */
export interface WebhookKey {
  id: string;
  secret: string;
}

export type SignatureFailure = "missing" | "malformed" | "stale" | "unknown-key" | "mismatch";

export type SignatureCheck =
  | {
      ok: true;
      /** The signed timestamp (unix seconds). */
      timestamp: number;
      /** The v1 value that matched: with the timestamp, what identifies this signature for replay checks. */
      signature: string;
      /** Index of the secret that matched (for rotation: which key signed). */
      secretIndex: number;
    }
  | { ok: false; reason: SignatureFailure; message: string };

const nowSeconds = () => Math.floor(Date.now() / 1000);

function mac(secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest();
}

/** The hex HMAC of "<timestamp>.<body>" under one secret. */
export function computeSignature(secret: string, timestamp: number, body: string | Uint8Array): string {
  return mac(secret, timestamp, body).toString("hex");
}

/**
 * The header value for a body: `t=…,v1=…` with one v1 per secret (several while rotating), or
 * `t=…,kid=…,v1=…` for a named key.
 */
export function signWebhook(
  secrets: string | readonly string[] | WebhookKey,
  body: string | Uint8Array,
  timestamp = nowSeconds(),
): string {
  const named = typeof secrets === "object" && "id" in secrets;
  const list = named ? [secrets.secret] : typeof secrets === "string" ? [secrets] : secrets;
  if (list.length === 0) throw new Error("signWebhook needs at least one secret");
  return [
    `t=${timestamp}`,
    ...(named ? [`kid=${secrets.id}`] : []),
    ...list.map((secret) => `v1=${computeSignature(secret, timestamp, body)}`),
  ].join(",");
}

interface ParsedHeader {
  timestamp: number;
  keyId: string | undefined;
  signatures: string[];
}

/** Splits `t=…[,kid=…],v1=…[,v1=…]`; unknown keys (future schemes) are ignored, a bad t, kid or v1 is not. */
function parseHeader(header: string): ParsedHeader | string {
  if (header.length > MAX_HEADER_LENGTH) return "signature header is too long";
  let timestamp: number | undefined;
  let keyId: string | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return "signature header must be t=<unix seconds>,v1=<hex hmac>";
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") {
      if (timestamp !== undefined || !TIMESTAMP.test(value)) return "signature header needs one numeric t=";
      timestamp = Number(value);
    } else if (key === "kid") {
      if (keyId !== undefined || !WEBHOOK_KEY_ID.test(value))
        return "signature header may name one kid= of 1-64 characters A-Z a-z 0-9 _ . -";
      keyId = value;
    } else if (key === "v1") {
      if (!HEX_MAC.test(value)) return "v1= must be 64 lower-case hex characters";
      signatures.push(value);
    }
  }
  if (timestamp === undefined) return "signature header has no t=";
  if (signatures.length === 0) return "signature header has no v1=";
  if (signatures.length > MAX_SIGNATURES) return `at most ${MAX_SIGNATURES} v1= values`;
  return { timestamp, keyId, signatures };
}

export interface VerifyOptions {
  /** The header value as received (undefined when absent). */
  header: string | string[] | undefined;
  /** The raw request body, exactly as received (before any JSON parsing). */
  body: string | Uint8Array;
  /** The receiver's secret(s), several while rotating; named keys for senders that say `kid=`. */
  secrets: string | readonly string[] | readonly WebhookKey[];
  /** The receiver's clock, in unix seconds. */
  now?: number;
  toleranceSeconds?: number;
}

/** Checks format, timestamp window, key id and MAC, in that order; comparisons are constant-time. */
export function verifyWebhookSignature(options: VerifyOptions): SignatureCheck {
  const { header } = options;
  if (header === undefined || header === "")
    return { ok: false, reason: "missing", message: "X-WedSync-Signature header is missing" };
  if (Array.isArray(header))
    return { ok: false, reason: "malformed", message: "X-WedSync-Signature header was sent more than once" };
  const parsed = parseHeader(header);
  if (typeof parsed === "string") return { ok: false, reason: "malformed", message: parsed };

  const now = options.now ?? nowSeconds();
  const tolerance = options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - parsed.timestamp) > tolerance) {
    return {
      ok: false,
      reason: "stale",
      message: `signature timestamp is more than ${tolerance} s away from the server's clock`,
    };
  }

  const keys: Array<Partial<WebhookKey> & { secret: string }> = (
    typeof options.secrets === "string" ? [options.secrets] : options.secrets
  ).map((key) => (typeof key === "string" ? { secret: key } : key));
  if (parsed.keyId !== undefined && !keys.some((key) => key.id === parsed.keyId)) {
    return { ok: false, reason: "unknown-key", message: `no key with kid=${parsed.keyId} is configured` };
  }
  const given = parsed.signatures.map((hex) => Buffer.from(hex, "hex"));
  // Every pair is compared (no early exit), so timing says nothing about which one matched.
  let match: { signature: string; secretIndex: number } | undefined;
  keys.forEach(({ id, secret }, secretIndex) => {
    if (parsed.keyId !== undefined && id !== parsed.keyId) return;
    const expected = mac(secret, parsed.timestamp, options.body);
    given.forEach((candidate, i) => {
      if (timingSafeEqual(candidate, expected) && !match)
        match = { signature: parsed.signatures[i]!, secretIndex };
    });
  });
  if (!match) return { ok: false, reason: "mismatch", message: "signature does not match" };
  return { ok: true, timestamp: parsed.timestamp, ...match };
}
