import type { ChannelMessage } from "@wedsync/channels";
import { type ChannelsClient, followChannel } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uid } from "../harness.ts";
import {
  auditDelivery,
  type Cluster,
  type CutProxy,
  clusterPrerequisites,
  createPublisher,
  type DedicatedRedis,
  formatAudit,
  mapLimit,
  type Nginx,
  pick,
  Resources,
  type ServerProcess,
  type Subscriber,
  sleep,
  startCluster,
  startCutProxy,
  startDedicatedRedis,
  startNginx,
  subscribe,
  toAudited,
  waitForDelivery,
  withTimeout,
} from "./cluster.ts";

const SUITE = "cluster: faults (kill -9, Redis restart, network cuts)";
const prerequisites = clusterPrerequisites(SUITE, ["nginx", "redis-server"]);

const CHANNELS = 10;
const RATE_PER_S = 50;
const STREAM_MS = 15_000;

describe.skipIf(!prerequisites)(SUITE, () => {
  const resources = new Resources();
  let redis: DedicatedRedis;
  let cluster: Cluster;
  let nginx: Nginx;
  let proxy: CutProxy;

  beforeAll(async () => {
    // Its own redis-server on its own port: this test stops it. Never the shared one.
    redis = await startDedicatedRedis(resources);
    cluster = await startCluster(resources, { ...prerequisites!, redisUrl: redis.url, count: 3 });
    nginx = await startNginx(resources, { upstreams: cluster.servers });
    // Some clients reach i3 through a proxy the test can cut; i1 is the one that gets killed.
    proxy = await startCutProxy(resources, cluster.servers[2]!.port);
  }, 60_000);

  afterAll(() => resources.release(), 60_000);

  it("every acknowledged broadcast reaches every subscriber exactly once, in order, across faults", async () => {
    const [victim, , proxied] = cluster.servers as [ServerProcess, ServerProcess, ServerProcess];
    const suppliers = Array.from({ length: CHANNELS }, () => uid("s"));
    const channels = suppliers.map((supplier) => `supplier:dashboard:${supplier}`);
    const owner = await cluster.client(nginx.url, { sub: uid("owner"), role: "supplier", suppliers });
    for (const supplier of suppliers)
      await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: supplier });

    // 40 stream subscribers through nginx, 20 through the cut proxy (to i3), and 10 durable
    // followers (channel.subscribe + followChannel) through nginx. All reconnect by themselves
    // with the library's default jittered backoff and resume from their last event id.
    const member = (supplier: string) => ({
      sub: uid("member"),
      role: "supplier" as const,
      suppliers: [supplier],
    });
    const subscribers: Subscriber[] = await mapLimit(
      Array.from({ length: 60 }, (_, i) => i),
      10,
      async (i) => {
        const supplier = suppliers[i % CHANNELS]!;
        const client = await cluster.client(i < 40 ? nginx.url : proxy.url, member(supplier));
        const subscriber = subscribe(client, `supplier:dashboard:${supplier}`);
        await withTimeout(subscriber.stream.started, 20_000, `subscriber ${i} started`);
        return subscriber;
      },
    );
    const followers = await mapLimit(suppliers, 10, async (supplier) => {
      const client = await cluster.client(nginx.url, member(supplier));
      const channel = `supplier:dashboard:${supplier}`;
      const messages: ChannelMessage[] = [];
      let resets = 0;
      const following = await followChannel(client, channel, {
        onMessage: (message) => {
          messages.push(message);
        },
        onReset: () => {
          resets += 1;
        },
      });
      resources.add("stop follower", () => following.stop().catch(() => {}));
      return {
        channel,
        messages,
        get resets() {
          return resets;
        },
      };
    });

    const direct = new Map<ServerProcess, ChannelsClient>();
    for (const server of cluster.servers)
      direct.set(
        server,
        await cluster.client(server.url, { sub: uid("publisher"), role: "supplier", suppliers }),
      );
    const live = new Set(cluster.servers);
    const publisher = createPublisher(
      (server) => direct.get(server)!,
      () => [...live],
    );

    // The steady stream: RATE_PER_S broadcasts per second to random live instances, each retried
    // elsewhere (same idempotency key) if its instance fails.
    const t0 = Date.now();
    const log: string[] = [];
    const note = (what: string) => log.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    const inFlight: Promise<unknown>[] = [];
    const stream = (async () => {
      for (let i = 0; Date.now() - t0 < STREAM_MS; i++) {
        inFlight.push(publisher.broadcast(pick(channels), `f${i}`));
        const due = t0 + ((i + 1) * 1000) / RATE_PER_S;
        await sleep(Math.max(0, due - Date.now()));
      }
    })();

    // The faults, while the stream runs. i1 comes back (like a supervisor would restart it) while
    // the proxied clients are cut twice more.
    let degraded: unknown;
    let restarted: Promise<void> = Promise.resolve();
    const faults = (async () => {
      await sleep(2_500);
      live.delete(victim);
      await victim.kill9();
      note(`kill -9 ${victim.id}`);
      await sleep(1_500);
      note(`cut ${proxy.cut()} proxied connection(s)`);
      await sleep(1_000);
      await redis.stop();
      note("redis stopped");
      // /readyz probes Redis with a 2 s deadline: the first answer may still be "ready".
      for (let i = 0; i < 10; i++) {
        degraded = await proxied.readyz().then(
          ({ body }) => body,
          (error: Error) => ({ error: error.message }),
        );
        if ((degraded as { status?: string }).status === "degraded") break;
        await sleep(250);
      }
      note(`${proxied.id} /readyz while Redis is down: ${JSON.stringify(degraded)}`);
      await sleep(1_500);
      await redis.start();
      note("redis started again on the same port");
      restarted = victim.restart().then(() => {
        live.add(victim);
        note(`${victim.id} restarted and ready`);
      });
      await sleep(1_000);
      note(`cut ${proxy.cut()} proxied connection(s)`);
      await sleep(2_500);
      note(`cut ${proxy.cut()} proxied connection(s)`);
    })();

    await faults;
    await stream;
    await restarted;
    const results = await Promise.all(inFlight);
    note(`stream done: ${results.length} broadcasts, ${publisher.acked.length} acked`);

    const complete = await waitForDelivery(publisher.acked, subscribers, 30_000);
    const followed = await (async () => {
      const deadline = Date.now() + 15_000;
      const wanted = new Map<string, number>();
      for (const ack of publisher.acked) wanted.set(ack.channel, (wanted.get(ack.channel) ?? 0) + 1);
      while (Date.now() < deadline) {
        if (followers.every((f) => new Set(f.messages.map((m) => m.id)).size >= (wanted.get(f.channel) ?? 0)))
          return true;
        await sleep(100);
      }
      return false;
    })();
    note(`delivered (streams complete: ${complete}, followers complete: ${followed})`);

    const all = [...subscribers.map(toAudited), ...followers];
    const audit = auditDelivery(publisher.acked, all);
    const reconnects = subscribers.reduce((sum, s) => sum + s.starts.length - 1, 0);
    console.log(
      `[faults] ${log.join("\n[faults] ")}\n[faults] subscribers=${all.length} reconnects(resumed streams)=${reconnects} ` +
        `failedAttempts=${publisher.failedAttempts}\n[faults] ${formatAudit(audit)}`,
    );

    expect(results.every((ack) => ack !== undefined)).toBe(true);
    expect(degraded).toMatchObject({ status: "degraded", database: "ok" });
    expect(audit.duplicates).toBe(0);
    expect(audit.missing).toBe(0);
    expect(audit).toMatchObject({ outOfOrder: 0, crossed: 0, resets: 0 });
    expect(audit.delivered).toBe(audit.expected);
    expect(complete && followed).toBe(true);
    // The faults really hit the subscribers: clients of i1 and the proxied ones resumed.
    expect(reconnects).toBeGreaterThanOrEqual(20);
  }, 120_000);
});
