import { RateLimiterRes } from "rate-limiter-flexible";
import type { RateDecision, RateLimiter, RateLimitRule } from "./rate-limit.ts";

/** The shared counter: spends `points` at once and reports the window's total afterwards. */
export interface SharedCounter {
  consume(key: string, points: number): Promise<RateLimiterRes>;
}

interface Lease {
  /** Points taken from the shared counter and not yet spent here. */
  left: number;
  /** End of the counter's window: unspent points lapse with it. */
  until: number;
  /** When the window's budget is gone: every consume until `until` is refused. */
  refused: boolean;
  /** A refill in flight; consumes for the key wait for it instead of sending their own. */
  refill?: Promise<void>;
}

/** Past this many keys, leases whose window has ended are dropped. */
const MAX_KEYS = 10_000;

/**
 * Takes points from the shared (Redis) counter a few at a time and spends them here, so a busy key
 * costs one round trip per lease instead of one per consume. The limit still holds across instances:
 * a point is counted in Redis before it is spent, and points an instance leased but did not spend lapse
 * with the window, so other instances can at worst be refused up to `leaseSize - 1` points early per
 * leasing instance. `leaseSize` is 1% of the rule's points, so rules of under 200 points per window
 * lease one point at a time: exactly the one-by-one behaviour.
 *
 * A lease that reaches past the limit gets the points that were still within it (the counter counts
 * every point asked for, as it does for refused single consumes), and the key is refused until the
 * window ends, as the counter itself would refuse it.
 */
export function leasedRateLimiter(counter: SharedCounter, rule: RateLimitRule): RateLimiter {
  const leaseSize = Math.max(1, Math.floor(rule.points / 100));
  const leases = new Map<string, Lease>();

  async function refill(key: string, lease: Lease): Promise<void> {
    let res: RateLimiterRes;
    try {
      res = await counter.consume(key, leaseSize);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      res = rejection;
    }
    const before = res.consumedPoints - leaseSize;
    lease.left += Math.max(0, Math.min(leaseSize, rule.points - before));
    lease.until = Date.now() + res.msBeforeNext;
    lease.refused = lease.left === 0;
  }

  function leaseOf(key: string, now: number): Lease {
    const lease = leases.get(key);
    if (lease && (lease.until > now || lease.refill)) return lease;
    if (leases.size >= MAX_KEYS) {
      for (const [k, l] of leases) if (l.until <= now && !l.refill) leases.delete(k);
    }
    const fresh: Lease = { left: 0, until: 0, refused: false };
    leases.set(key, fresh);
    return fresh;
  }

  return {
    async consume(key): Promise<RateDecision> {
      for (;;) {
        const now = Date.now();
        const lease = leaseOf(key, now);
        if (lease.refill) {
          await lease.refill;
          continue;
        }
        if (lease.until > now) {
          if (lease.left > 0) {
            lease.left -= 1;
            return { allowed: true, remaining: lease.left };
          }
          if (lease.refused) return { allowed: false, retryAfterMs: lease.until - now };
        }
        lease.refill = refill(key, lease).finally(() => {
          lease.refill = undefined;
        });
      }
    },
  };
}
