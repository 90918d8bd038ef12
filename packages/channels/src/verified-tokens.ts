import { setBounded } from "./bounded-map.ts";

/**
 * Tokens already verified, by their exact text (signature included), so a token is verified once and
 * not on every HTTP request that carries it. Verifying is the HMAC, jose's claim checks and the
 * identity's schema (~36 µs for HS256, see hs256.ts); a JWKS token's signature goes through WebCrypto,
 * a thread-pool round trip that a profile of the server at ~1,500 broadcasts/s put at about a tenth
 * of its CPU.
 * An entry serves until its token expires, and never longer than `maxAgeMs` (a key withdrawn from a
 * JWKS stops its tokens within that). Tokens that failed verification are never kept.
 *
 * Small on purpose: what repeats is a busy HTTP client's token. A WebSocket's token is verified once
 * per connection, and keeping ten thousand of them (~0.6 KiB each with the identity) would only add to
 * what every idle connection costs.
 */
export class VerifiedTokens<T extends { expiresAt: Date }> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  constructor(
    private readonly capacity = 1_000,
    private readonly maxAgeMs = 60_000,
  ) {}

  get(token: string, now = Date.now()): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.value;
  }

  set(token: string, value: T, now = Date.now()): void {
    const until = Math.min(value.expiresAt.getTime(), now + this.maxAgeMs);
    if (until <= now) return;
    setBounded(this.entries, token, { value, until }, this.capacity);
  }
}
