import { TRPCError } from "@trpc/server";
import type { Bus, RateLimiter } from "@wedsync/bus";
import type { Config } from "./config.ts";

/** Carried as the cause of a TOO_MANY_REQUESTS error so the error formatter can expose the delay. */
export class RateLimitedError extends Error {
  override name = "RateLimitedError";
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The limits of DESIGN.md, with counters shared across instances through the bus. */
export function createRateLimits(bus: Bus, config: Config) {
  return {
    broadcastsPerChannel: limit(
      bus.rateLimiter({
        name: "broadcast",
        points: config.CHANNELS_RATE_BROADCASTS_PER_MIN,
        durationSeconds: 60,
      }),
      `${config.CHANNELS_RATE_BROADCASTS_PER_MIN} broadcasts per minute on a channel`,
    ),
    subscribesPerUser: limit(
      bus.rateLimiter({
        name: "subscribe",
        points: config.CHANNELS_RATE_SUBSCRIBES_PER_HOUR,
        durationSeconds: 3_600,
      }),
      `${config.CHANNELS_RATE_SUBSCRIBES_PER_HOUR} subscription attempts per hour`,
    ),
  };
}

export type RateLimits = ReturnType<typeof createRateLimits>;

/** Consumes a point or throws TOO_MANY_REQUESTS naming the limit and when to retry. */
function limit(limiter: RateLimiter, description: string) {
  return async (key: string) => {
    const decision = await limiter.consume(key);
    if (decision.allowed) return;
    const seconds = Math.ceil(decision.retryAfterMs / 1000);
    const message = `rate limit reached: ${description}; retry in ${seconds} s`;
    throw new TRPCError({
      code: "TOO_MANY_REQUESTS",
      message,
      cause: new RateLimitedError(message, decision.retryAfterMs),
    });
  };
}
