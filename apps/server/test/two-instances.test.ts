import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisUrlForTests } from "../../../packages/bus/test/redis-server.ts";
import { postgresUrlForTests } from "../../../packages/db/test/fresh-postgres.ts";
import {
  codeOf,
  events,
  eventually,
  type InstancePair,
  primeLive,
  startInstancePair,
  supplierDashboard,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

const SUITE = "two instances in one process: postgres + redis";
const adminUrl = postgresUrlForTests(SUITE);
const redisUrl = redisUrlForTests();

/**
 * Two instances sharing one Postgres and one Redis (in this process, so the test can look inside):
 * what is shared across instances must hold across them.
 */
describe.skipIf(!adminUrl || !redisUrl)(SUITE, () => {
  let pair: InstancePair | undefined;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const secret = "two-instances-secret-0123456789-abcdefghij";
    const env = { CHANNELS_JWT_SECRET: secret, CHANNELS_STATS_INTERVAL_MS: "200" };
    pair = await startInstancePair(
      { adminUrl: adminUrl!, redisUrl: redisUrl! },
      env,
      "channels_two_instances",
    );
    ({ a, b } = pair);
  });

  afterAll(async () => {
    await pair?.stop();
  });

  it("a broadcast on one instance reaches a stream on the other", async () => {
    const { s, owner, channelName } = await supplierDashboard(a);
    const reader = events(b.client({ sub: uid("reader"), role: "supplier", suppliers: [s] }), channelName);
    await primeLive(reader, (i) =>
      owner.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: `probe ${i}` },
      }),
    );
    await owner.trpc.channel.broadcast.mutate({
      channelName,
      event: "message.posted",
      payload: { text: "hello b" },
    });
    await reader.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "hello b"),
      "hello b",
    );
  });

  it("the broadcast rate limit of a channel holds across instances", async () => {
    const { s, owner, channelName } = await supplierDashboard(a);
    const other = b.client({ sub: uid("other"), role: "supplier", suppliers: [s] });
    const post = (client: typeof owner, i: number) =>
      client.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: `m${i}` },
      });
    for (let i = 0; i < 100; i++) await post(i % 2 ? owner : other, i);
    expect(await codeOf(post(owner, 100))).toBe("TOO_MANY_REQUESTS");
    expect(await codeOf(post(other, 101))).toBe("TOO_MANY_REQUESTS");
  });

  it("revoking on one instance ends the grantee's stream on the other", async () => {
    const { owner, channelName } = await supplierDashboard(a);
    const guestId = uid("guest");
    await owner.trpc.channel.grant.mutate({ channelName, userId: guestId });
    const stream = events(b.client({ sub: guestId, role: "couple", couples: [uid("c")] }), channelName);
    await stream.started;
    await owner.trpc.channel.revoke.mutate({ channelName, userId: guestId });
    expect(await stream.failure()).toBe("FORBIDDEN");
  });

  it("presence and admin.stats cover both instances", async () => {
    const { s, owner, channelName } = await supplierDashboard(a);
    const onA = events(a.client({ sub: uid("on-a"), role: "supplier", suppliers: [s] }), channelName);
    const onB = events(b.client({ sub: uid("on-b"), role: "supplier", suppliers: [s] }), channelName);
    await Promise.all([onA.started, onB.started]);
    expect((await owner.trpc.presence.list.query({ channelName })).length).toBe(2);

    const admin = a.client({ sub: uid("admin"), role: "admin" });
    const stats = await eventually(
      () => admin.trpc.admin.stats.query(),
      (snapshot) => snapshot.cluster.instances === 2 && snapshot.instances.every((i) => i.liveStreams >= 1),
      "both instances in admin.stats",
    );
    expect(stats.instances.map((i) => i.instanceId)).toEqual(["a", "b"]);
    expect(stats.cluster.connections).toBe(stats.instances[0]!.connections + stats.instances[1]!.connections);
  });

  it("a channel deleted and created again on one instance takes broadcasts through the other (stale cache)", async () => {
    const { s, owner, channelName } = await supplierDashboard(a);
    const onB = b.client({ sub: uid("b-member"), role: "supplier", suppliers: [s] });
    const post = (body: string) =>
      onB.trpc.channel.broadcast.mutate({ channelName, event: "message.posted", payload: { text: body } });
    const first = await post("cached on b");
    await a.instance.services.manager.cleanupInactiveChannels(new Date(Date.now() + 1e12));
    const again = await owner.trpc.channel.create.mutate({
      scope: "supplier",
      entity: "dashboard",
      entityId: s,
    });
    expect(again.id).not.toBe(first.id.split(":")[0]);
    const next = await post("after re-create");
    expect(next.seq).toBe(1);
    expect(next.id.startsWith(again.id)).toBe(true);
  });

  it("a channel cleanup deleted on one instance ends the other's streams of it, and is NOT_FOUND to a new one", async () => {
    const { s, owner, channelName } = await supplierDashboard(b);
    const member = a.client({ sub: uid("m"), role: "supplier", suppliers: [s] });
    // Instance a listens to the channel and has just read its head.
    const listening = events(member, channelName);
    await listening.started;
    await b.instance.services.manager.cleanupInactiveChannels(new Date(Date.now() + 1e12));

    expect(await listening.failure()).toBe("NOT_FOUND");
    expect(await events(member, channelName).failure()).toBe("NOT_FOUND");
    await owner.close();
  });
});
