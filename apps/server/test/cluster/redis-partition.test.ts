import type { ChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uid } from "../harness.ts";
import {
  type Cluster,
  clusterPrerequisites,
  Resources,
  type ServerProcess,
  type Subscriber,
  startCluster,
  startCutProxy,
  startServers,
  subscribe,
} from "./cluster.ts";

const SUITE = "cluster: one instance partitioned from Redis, then killed";
const prerequisites = clusterPrerequisites(SUITE, []);

/**
 * i1 is healthy; each test starts a victim whose Redis link runs through a proxy the test closes
 * (a partition between that instance and Redis only), so the victim still acknowledges broadcasts
 * (stored; /readyz degraded) but cannot fan them out — and then it is killed with kill -9.
 */
describe.skipIf(!prerequisites)(SUITE, () => {
  const resources = new Resources();
  let cluster: Cluster;
  let healthy: ServerProcess;

  beforeAll(async () => {
    cluster = await startCluster(resources, {
      ...prerequisites!,
      count: 1,
      env: { CHANNELS_HEAD_CHECK_MS: "1000" },
    });
    healthy = cluster.servers[0]!;
  }, 60_000);

  afterAll(() => resources.release(), 60_000);

  async function scenario() {
    const redisPort = Number(new URL(prerequisites!.redisUrl).port || 6379);
    const redisLink = await startCutProxy(resources, redisPort);
    const [victim] = await startServers(resources, {
      count: 1,
      databaseUrl: cluster.databaseUrl,
      redisUrl: `redis://127.0.0.1:${redisLink.port}`,
      secret: cluster.secret,
    });
    const supplier = uid("s");
    const channel = `supplier:dashboard:${supplier}`;
    const claims = () => ({ sub: uid("u"), role: "supplier" as const, suppliers: [supplier] });
    const viaHealthy = await cluster.client(healthy.url, claims());
    const viaVictim = await cluster.client(victim!.url, claims());
    await viaHealthy.trpc.channel.create.mutate({
      scope: "supplier",
      entity: "dashboard",
      entityId: supplier,
    });
    const subscriber: Subscriber = subscribe(await cluster.client(healthy.url, claims()), channel);
    await subscriber.stream.started;
    const post = (client: ChannelsClient, text: string, idempotencyKey?: string) =>
      client.trpc.channel.broadcast.mutate({
        channelName: channel,
        event: "message.posted",
        payload: { text },
        idempotencyKey,
      });
    await post(viaVictim, "before the partition");
    await subscriber.stream.until(1);

    await redisLink.close();
    const readiness = await victim!.readyz();
    return { victim: victim!, viaHealthy, viaVictim, subscriber, post, readiness };
  }

  it("an idempotent retry on a healthy instance fans out what a dead, partitioned instance stored", async () => {
    const { victim, viaHealthy, viaVictim, subscriber, post, readiness } = await scenario();
    expect(readiness.body).toMatchObject({ status: "degraded", database: "ok" });
    // Stored by the victim; its answer "never reaches the client", who retries elsewhere.
    const stored = await post(viaVictim, "stored, not fanned out", "retry-key");
    await victim.kill9();
    const retried = await post(viaHealthy, "stored, not fanned out", "retry-key");
    expect(retried).toMatchObject({ id: stored.id, seq: stored.seq, duplicate: true });
    await subscriber.stream.untilMatch(
      (items) => items.some(({ id }) => id === stored.id),
      `message #${stored.seq} after the retry`,
      5_000,
    );
    expect(subscriber.stream.messages().map((m) => m.seq)).toEqual([1, 2]);
  }, 60_000);

  // A broadcast acknowledged by an instance that cannot reach Redis waits in that instance's memory
  // for Redis to return; if the instance dies first, the surviving instances' periodic head check
  // (CHANNELS_HEAD_CHECK_MS, 1 s here) finds the channel's head ahead and re-reads the store.
  it("an acknowledged broadcast of a partitioned instance that dies reaches live subscribers elsewhere without a later message", async () => {
    const { victim, viaVictim, subscriber, post } = await scenario();
    const stored = await post(viaVictim, "acknowledged during the partition");
    await victim.kill9();
    await subscriber.stream.untilMatch(
      (items) => items.some(({ id }) => id === stored.id),
      `message #${stored.seq} with no later message`,
      5_000,
    );
  }, 60_000);
});
