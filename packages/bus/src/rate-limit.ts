import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { leasedRateLimiter } from "./leased-rate-limit.ts";

export interface RateLimitRule {
  /** Distinguishes the counters of different rules in a shared store. */
  name: string;
  points: number;
  durationSeconds: number;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterMs: number };

export interface RateLimiter {
  /** Spends one point for `key`; refused once the rule's points for the window are spent. */
  consume(key: string): Promise<RateDecision>;
}

type FlexibleLimiter = RateLimiterMemory | RateLimiterRedis;

function wrap(limiter: FlexibleLimiter): RateLimiter {
  return {
    async consume(key) {
      try {
        const res = await limiter.consume(key);
        return { allowed: true, remaining: res.remainingPoints };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes)
          return { allowed: false, retryAfterMs: rejection.msBeforeNext };
        throw rejection;
      }
    },
  };
}

export function memoryRateLimiter(rule: RateLimitRule): RateLimiter {
  return wrap(
    new RateLimiterMemory({ keyPrefix: rule.name, points: rule.points, duration: rule.durationSeconds }),
  );
}

/**
 * Counters shared by every instance through Redis. While Redis is unreachable each instance
 * falls back to its own in-memory counters (limits then hold per instance, not globally).
 */
export function redisRateLimiter(rule: RateLimitRule, client: Redis, prefix: string): RateLimiter {
  const options = {
    keyPrefix: `${prefix}rl:${rule.name}`,
    points: rule.points,
    duration: rule.durationSeconds,
  };
  const counter = new RateLimiterRedis({
    ...options,
    storeClient: client,
    insuranceLimiter: new RateLimiterMemory(options),
  });
  // A round trip to Redis per consume sat on every broadcast's path; leases take points a few at a time.
  return leasedRateLimiter(counter, rule);
}
