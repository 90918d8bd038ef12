import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { RedisBus } from "../src/redis-bus.ts";
import { busContract } from "./bus.contract.ts";
import { redisUrlForTests, startRedisServer } from "./redis-server.ts";

const url = redisUrlForTests();

if (url) {
  busContract("redis", async () => {
    const bus = new RedisBus({ url, prefix: `test-${randomUUID()}:` });
    await bus.connect();
    return bus;
  });
} else {
  describe.skip("Bus contract: redis (set REDIS_URL to run)", () => {
    it("needs Redis", () => {});
  });
}

describe.runIf(url)("RedisBus rate limits", () => {
  it("share one budget across instances", async () => {
    const instances = [new RedisBus({ url: url! }), new RedisBus({ url: url! })];
    try {
      await Promise.all(instances.map((bus) => bus.connect()));
      const rule = { name: `shared-${randomUUID()}`, points: 10, durationSeconds: 60 };
      const [a, b] = instances.map((bus) => bus.rateLimiter(rule));
      let allowed = 0;
      for (let i = 0; i < 10; i++) if ((await (i % 2 ? a! : b!).consume("k")).allowed) allowed++;
      expect(allowed).toBe(10);
      expect((await a!.consume("k")).allowed).toBe(false);
      expect((await b!.consume("k")).allowed).toBe(false);
    } finally {
      await Promise.all(instances.map((bus) => bus.close()));
    }
  });
});

describe.runIf(url)("RedisBus presence", () => {
  it("two instances sweeping at once report each expired entry exactly once", async () => {
    const instances = [new RedisBus({ url: url! }), new RedisBus({ url: url! })];
    try {
      await Promise.all(instances.map((bus) => bus.connect()));
      const channelId = `sweep-${randomUUID()}`;
      const entries = Array.from({ length: 50 }, (_, i) => ({
        channelId,
        entry: { clientId: `c${i}`, userId: `u${i}`, instanceId: "dead", joinedAt: 0 },
      }));
      await instances[0]!.presence.upsert(entries, 30);
      await new Promise((resolve) => setTimeout(resolve, 80));
      const [a, b] = await Promise.all(instances.map((bus) => bus.presence.sweep(channelId)));
      expect(a!.length + b!.length).toBe(50);
      expect(new Set([...a!, ...b!].map((e) => e.clientId)).size).toBe(50);
    } finally {
      await Promise.all(instances.map((bus) => bus.close()));
    }
  });
});

describe.runIf(url)("RedisBus across a Redis restart", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function pair(redisUrl: string) {
    const receiver = new RedisBus({ url: redisUrl });
    const sender = new RedisBus({ url: redisUrl });
    cleanups.push(
      () => receiver.close(),
      () => sender.close(),
    );
    await Promise.all([receiver.connect(), sender.connect()]);
    const frames: string[] = [];
    let resyncs = 0;
    receiver.onFrame((_topic, frame) => frames.push(frame));
    receiver.onResync(() => resyncs++);
    await receiver.subscribe("t");
    return { receiver, sender, frames, resyncs: () => resyncs };
  }

  it("resubscribes after Redis restarts and tells receivers to resync from the store", async () => {
    let redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const { sender, frames, resyncs } = await pair(redis.url);
    await sender.publish("t", "before");
    await expect.poll(() => frames).toEqual(["before"]);

    await redis.stop();
    await expect(sender.publish("t", "during")).rejects.toThrow();
    redis = await startRedisServer(redis.port);

    await expect.poll(resyncs, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => sender.healthy, { timeout: 10_000 }).toBe(true);
    await sender.publish("t", "after");
    // "during" may or may not be re-sent in time (receivers resync from the store either way).
    await expect.poll(() => frames.filter((f) => f !== "during")).toEqual(["before", "after"]);
  });

  it("re-sends a frame whose publish failed when only the publisher's connection dropped", async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const { sender, frames, resyncs } = await pair(redis.url);
    const admin = new Redis(redis.url);
    cleanups.push(async () => void admin.disconnect());
    // Kills plain (publisher) connections only; the receiver's pub/sub connection stays up.
    await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    await sender.publish("t", "during").catch(() => {});
    await expect.poll(() => frames, { timeout: 10_000 }).toContain("during");
    expect(frames.filter((f) => f === "during").length).toBeGreaterThanOrEqual(1);
    expect(resyncs()).toBe(0);
  });
});

describe.runIf(url)("RedisBus claimOnce", () => {
  it("a key claimed on one instance is taken for the other", async () => {
    const instances = [new RedisBus({ url: url! }), new RedisBus({ url: url! })];
    try {
      await Promise.all(instances.map((bus) => bus.connect()));
      const key = `shared-${randomUUID()}`;
      expect(await instances[0]!.claimOnce(key, 60_000)).toBe(true);
      expect(await instances[1]!.claimOnce(key, 60_000)).toBe(false);
    } finally {
      await Promise.all(instances.map((bus) => bus.close()));
    }
  });
});
