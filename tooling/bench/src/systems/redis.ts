import { Redis } from "ioredis";
import { withTimeout } from "../clock.ts";
import { SystemUnavailable } from "./types.ts";

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Throws SystemUnavailable when Redis does not answer a PING within 3 s. */
export async function checkRedis(url = REDIS_URL) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      3_000,
      `redis ${url}`,
    );
  } catch (error) {
    throw new SystemUnavailable(`Redis at ${url} is not reachable: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}
