import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisUrlForTests, startRedisServer } from "../../../packages/bus/test/redis-server.ts";
import { events, primeLive, startTestServer, type TestServer, text, uid } from "./harness.ts";

const SUITE = "one instance while its Redis is down";

/** Needs redis-server (the shared Redis is never stopped: this suite starts its own). */
describe.skipIf(!redisUrlForTests())(SUITE, () => {
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let server: TestServer;

  beforeAll(async () => {
    redis = await startRedisServer();
    server = await startTestServer({ env: { REDIS_URL: redis.url } });
  });

  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it("keeps storing and delivering locally, reports degraded, and opens new streams", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("m"), role: "supplier", suppliers: [s] });
    const channelName = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const post = (body: string) =>
      member.trpc.channel.broadcast.mutate({ channelName, event: "message.posted", payload: { text: body } });
    const before = events(member, channelName);
    await primeLive(before, (i) => post(`probe ${i}`));

    await redis.stop();
    const readyz = await (await fetch(`${server.url}/readyz`)).json();
    expect(readyz).toMatchObject({ status: "degraded", database: "ok" });

    const { seq } = await post("while redis is down");
    await before.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && data.seq === seq),
      "live delivery on the same instance",
    );
    const during = events(member, channelName);
    await during.started;
    const next = await post("to a stream opened during the outage");
    await during.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && data.seq === next.seq),
      "the new stream's message",
    );
    expect(during.messages().map(text)).toContain("to a stream opened during the outage");
    const subscribers = await member.trpc.channel.subscribers.query({ channelName });
    expect(Array.isArray(subscribers)).toBe(true);
  });
});
