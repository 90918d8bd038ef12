import type { ChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uid } from "../harness.ts";
import {
  auditDelivery,
  type Cluster,
  clusterPrerequisites,
  createPublisher,
  formatAudit,
  mapLimit,
  type Nginx,
  pick,
  Resources,
  type ServerProcess,
  type Subscriber,
  startCluster,
  startNginx,
  subscribe,
  toAudited,
  waitForDelivery,
  withTimeout,
} from "./cluster.ts";

const SUITE = "cluster: three instances behind nginx";
const prerequisites = clusterPrerequisites(SUITE);

const CHANNELS = 30;
const CLIENTS = 300;
const BROADCASTS = 3_000;

describe.skipIf(!prerequisites)(SUITE, () => {
  const resources = new Resources();
  let cluster: Cluster;
  let nginx: Nginx;

  beforeAll(async () => {
    cluster = await startCluster(resources, { ...prerequisites!, count: 3 });
    nginx = await startNginx(resources, { upstreams: cluster.servers });
  }, 60_000);

  afterAll(() => resources.release(), 60_000);

  it(`${CLIENTS} clients through nginx on ${CHANNELS} channels receive ${BROADCASTS} broadcasts from random instances exactly once, in order`, async () => {
    const started = Date.now();
    const suppliers = Array.from({ length: CHANNELS }, () => uid("s"));
    const channels = suppliers.map((supplier) => `supplier:dashboard:${supplier}`);
    const owner = await cluster.client(nginx.url, { sub: uid("owner"), role: "supplier", suppliers });
    await mapLimit(suppliers, 5, (supplier) =>
      owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: supplier }),
    );

    // Clients connect through the load balancer: round robin spreads them over the instances.
    const subscribers: Subscriber[] = await mapLimit(
      Array.from({ length: CLIENTS }, (_, i) => i),
      25,
      async (i) => {
        const supplier = suppliers[i % CHANNELS]!;
        const client = await cluster.client(nginx.url, {
          sub: uid("member"),
          role: "supplier",
          suppliers: [supplier],
        });
        const subscriber = subscribe(client, `supplier:dashboard:${supplier}`);
        await withTimeout(subscriber.stream.started, 20_000, `subscriber ${i} started`);
        return subscriber;
      },
    );
    const perInstance = await Promise.all(cluster.servers.map((server) => server.connections()));
    const connected = Date.now();

    // Broadcasts go to the instances directly, so that they really come from random instances.
    const direct = new Map<ServerProcess, ChannelsClient>();
    for (const server of cluster.servers)
      direct.set(
        server,
        await cluster.client(server.url, { sub: uid("publisher"), role: "supplier", suppliers }),
      );
    const publisher = createPublisher(
      (server) => direct.get(server)!,
      () => cluster.servers,
    );
    await mapLimit(
      Array.from({ length: BROADCASTS }, (_, i) => i),
      24,
      // No faults here: one attempt each, no idempotency key (one lookup less per broadcast).
      (i) => publisher.broadcast(pick(channels), `m${i}`, { attempts: 1, idempotent: false }),
    );
    const published = Date.now();
    expect(publisher.acked).toHaveLength(BROADCASTS);

    const complete = await waitForDelivery(publisher.acked, subscribers, 30_000);
    const audit = auditDelivery(publisher.acked, subscribers.map(toAudited));
    const received = subscribers.reduce((sum, s) => sum + s.stream.items.length, 0);
    console.log(
      `[three-instances] clients=${CLIENTS} channels=${CHANNELS} connections per instance=${perInstance.join("/")} ` +
        `broadcasts=${BROADCASTS} acked=${audit.acked} received=${received} ${formatAudit(audit)} ` +
        `failedAttempts=${publisher.failedAttempts} | connect ${connected - started} ms, publish ${published - connected} ms, ` +
        `drain ${Date.now() - published} ms`,
    );

    expect(complete).toBe(true);
    expect(audit).toMatchObject({
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
      crossed: 0,
      resets: 0,
      unacked: 0,
    });
    expect(audit.delivered).toBe(audit.expected);
    expect(audit.expected).toBe((BROADCASTS * CLIENTS) / CHANNELS);
    // Exactly its channel's messages, in seq order: the received seqs are the channel's acked seqs.
    const seqsOf = new Map<string, number[]>();
    for (const ack of [...publisher.acked].sort((a, b) => a.seq - b.seq)) {
      const list = seqsOf.get(ack.channel) ?? [];
      list.push(ack.seq);
      seqsOf.set(ack.channel, list);
    }
    for (const subscriber of subscribers)
      expect(subscriber.stream.messages().map((m) => m.seq)).toEqual(seqsOf.get(subscriber.channel) ?? []);
    // Round robin without sticky sessions put clients on every instance.
    for (const count of perInstance) expect(count).toBeGreaterThan(0);
  }, 120_000);
});
