import { createRemoteJWKSet, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { setBounded } from "./bounded-map.ts";
import { hs256Verifier } from "./hs256.ts";
import { type Identity, identityClaimsSchema } from "./identity.ts";
import { VerifiedTokens } from "./verified-tokens.ts";

export interface TokenSettings {
  /** HS256 key: the UTF-8 bytes of CHANNELS_JWT_SECRET. */
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

export class TokenError extends Error {
  override name = "TokenError";
}

export interface VerifyOptions {
  /**
   * false: the token is looked up among those already verified but not added to them. For a
   * WebSocket's token, verified once per connection: a connect storm would otherwise push out the
   * tokens of busy HTTP clients, which are what the cache is for, and keep one entry per connect.
   */
  remember?: boolean;
}

export type VerifiedIdentity = Identity & { expiresAt: Date };

export type TokenVerifier = (token: string, options?: VerifyOptions) => Promise<VerifiedIdentity>;

const CLOCK_TOLERANCE_S = 5;

export function createTokenVerifier(
  settings: TokenSettings,
  verified = new VerifiedTokens<VerifiedIdentity>(),
): TokenVerifier {
  const options = {
    clockTolerance: CLOCK_TOLERANCE_S,
    requiredClaims: ["exp", "sub"],
    ...(settings.issuer ? { issuer: settings.issuer } : {}),
    ...(settings.audience ? { audience: settings.audience } : {}),
  };
  // HS256 answers at once: awaiting its answer directly saves a promise per connect.
  let verify: (token: string) => JWTPayload | Promise<JWTPayload>;
  if (settings.jwksUrl) {
    const keys = createRemoteJWKSet(new URL(settings.jwksUrl));
    verify = async (token) => (await jwtVerify(token, keys, options)).payload;
  } else if (settings.secret) {
    verify = hs256Verifier(settings.secret, options);
  } else {
    throw new TokenError("no CHANNELS_JWT_SECRET or CHANNELS_JWKS_URL configured");
  }
  return async (token, use) => {
    const known = verified.get(token);
    if (known) return known;
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (error) {
      throw new TokenError(`invalid token: ${(error as Error).message}`);
    }
    const claims = identityClaimsSchema.safeParse(payload);
    if (!claims.success)
      throw new TokenError(`token claims are malformed: ${claims.error.issues[0]?.message}`);
    const identity = { ...claims.data, expiresAt: new Date((payload.exp ?? 0) * 1000) };
    if (use?.remember !== false) verified.set(token, identity);
    return identity;
  };
}

/** The HS256 signing key for `secret`; a failed import rejects where the key is awaited, not unhandled. */
function hmacKey(secret: string) {
  const key = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  key.catch(() => {});
  return key;
}

/** Signing keys of the last few secrets minted with (tests use several), each imported once. */
const signingKeys = new Map<string, ReturnType<typeof hmacKey>>();
const SIGNING_KEYS_KEPT = 8;

function signingKey(secret: string) {
  let key = signingKeys.get(secret);
  if (!key) {
    key = hmacKey(secret);
    setBounded(signingKeys, secret, key, SIGNING_KEYS_KEPT);
  }
  return key;
}

/** Signs a development token with the HS256 secret. */
export async function mintToken(secret: string, claims: Identity, expiresIn = "12h"): Promise<string> {
  const { sub, ...rest } = claims;
  return new SignJWT(rest)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(await signingKey(secret));
}
