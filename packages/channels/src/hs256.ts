import { createHmac, createSecretKey, timingSafeEqual } from "node:crypto";
import {
  decodeProtectedHeader,
  errors,
  type JWTClaimVerificationOptions,
  type JWTPayload,
  UnsecuredJWT,
} from "jose";

/** jose validates a claims set it can read without a signature only under this header. */
const UNSECURED_HEADER = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");

/**
 * Verifies an HS256 JWT: the signature with node:crypto's HMAC, the header and the claims with jose.
 *
 * Why not jose's jwtVerify: jose 6 signs and verifies through WebCrypto only, and Node runs a
 * WebCrypto HMAC as a thread-pool job. On a server pinned to one core that cost 120-300 µs of the core
 * per verification: the largest single cost of a WebSocket connect in the bench's connect storms
 * (16-18% of the server's busy time). This check took 9.5-16 µs in a side test, claims included. Only the signature
 * check is ours; jose still decodes the header, and it validates the claims set (exp, nbf, the
 * required claims, issuer, audience, clock tolerance) with the options jwtVerify would get, through
 * UnsecuredJWT.decode of the verified payload. Refusals are jose's own error classes.
 */
export function hs256Verifier(secret: string, options: JWTClaimVerificationOptions) {
  const key = createSecretKey(Buffer.from(secret, "utf8"));
  // An issuer gives every token the same header: its decoding is kept for the next token.
  let known: { header: string; alg: unknown; crit: unknown } | undefined;
  return (token: string): JWTPayload => {
    const parts = token.split(".");
    if (parts.length !== 3) throw new errors.JWSInvalid("Invalid Compact JWS");
    const [header, payload, signature] = parts as [string, string, string];
    if (known?.header !== header) {
      const { alg, crit } = decodeProtectedHeader(token);
      known = { header, alg, crit };
    }
    const { alg, crit } = known;
    if (alg !== "HS256")
      throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    // No extension is understood here, so a token that makes one critical is refused (RFC 7515 4.1.11).
    if (crit !== undefined)
      throw new errors.JOSENotSupported('"crit" (Critical) Header Parameter is not supported');
    const expected = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url");
    // The signature's text is compared, not its decoding: base64url decoding skips stray characters.
    if (
      signature.length !== expected.length ||
      !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
    )
      throw new errors.JWSSignatureVerificationFailed();
    return UnsecuredJWT.decode(`${UNSECURED_HEADER}.${payload}.`, options).payload;
  };
}
