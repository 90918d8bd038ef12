import { errorCode } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createFreshDatabase,
  type FreshPostgres,
  postgresUrlForTests,
} from "../../../packages/db/test/fresh-postgres.ts";
import {
  type Claims,
  type Collector,
  events,
  post,
  primeLive,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

const SUITE = "apps/server end to end: postgres";
// Throws under CI when DATABASE_URL is missing, so the file fails instead of passing vacuously.
const adminUrl = postgresUrlForTests(SUITE);

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.skipIf(!adminUrl)(SUITE, () => {
  let fresh: FreshPostgres | undefined;
  let server: TestServer;

  beforeAll(async () => {
    fresh = await createFreshDatabase(adminUrl!, "channels_server_test");
    // The concurrency test publishes 400 messages on one channel: above the default rate limit.
    server = await startTestServer({
      database: { url: fresh.url },
      env: { CHANNELS_RATE_BROADCASTS_PER_MIN: "100000" },
    });
  });

  afterAll(async () => {
    try {
      await server?.stop();
    } finally {
      await fresh?.drop();
    }
  });

  it("runs on Postgres", () => {
    expect(server.instance.mode.database).toMatch(/^postgres /);
  });

  it("create, subscribe over WebSocket, broadcast, go offline and resume without gap", async () => {
    const supplierId = uid("s");
    const coupleId = uid("c");
    const supplier = server.client({ sub: uid("supplier"), role: "supplier", suppliers: [supplierId] });
    const coupleClaims: Claims = { sub: uid("couple"), role: "couple", couples: [coupleId] };
    const phone = server.client(coupleClaims);
    const created = await supplier.trpc.channel.create.mutate({
      scope: "collaboration",
      entity: supplierId,
      entityId: coupleId,
    });
    expect(
      await supplier.trpc.channel.create.mutate({
        scope: "collaboration",
        entity: supplierId,
        entityId: coupleId,
      }),
    ).toEqual(created);

    const subscribed = await phone.trpc.channel.subscribe.mutate({ channelName: created.name });
    expect(subscribed.missed).toEqual([]);
    const live = events(phone, created.name);
    const probeSeq = await primeLive(live, (n) => post(supplier, created.name, `probe ${n}`));
    const resumeFrom = live.lastEventId!;
    await phone.close();

    for (const body of ["one", "two", "three"]) await post(supplier, created.name, body);

    const laptop = server.client(coupleClaims);
    const resumed = events(laptop, created.name, resumeFrom);
    await resumed.until(3);
    await post(supplier, created.name, "live");
    await resumed.until(4);
    expect(resumed.messages().map((m) => [m.seq, text(m)])).toEqual([
      [probeSeq + 1, "one"],
      [probeSeq + 2, "two"],
      [probeSeq + 3, "three"],
      [probeSeq + 4, "live"],
    ]);
    expect(resumed.resets()).toEqual([]);

    // The durable side agrees: everything since the subscribe is pending until acknowledged.
    const pending = await laptop.trpc.queue.pending.query();
    expect(pending.map(text).slice(-4)).toEqual(["one", "two", "three", "live"]);
    await laptop.trpc.queue.ack.mutate({ messageIds: [pending.at(-1)!.id] });
    expect(await laptop.trpc.queue.pending.query()).toEqual([]);
    resumed.unsubscribe();
  });

  it("concurrent publishers on real connections keep one gap-free order for readers resuming mid-race", async () => {
    const supplierId = uid("s");
    const coupleId = uid("c");
    const publishers = Array.from({ length: 4 }, () =>
      server.client({ sub: uid("supplier"), role: "supplier", suppliers: [supplierId] }),
    );
    const reader = server.client({ sub: uid("couple"), role: "couple", couples: [coupleId] });
    const { name } = await publishers[0]!.trpc.channel.create.mutate({
      scope: "collaboration",
      entity: supplierId,
      entityId: coupleId,
    });
    const opening = await post(publishers[0]!, name, "opening");
    const streams: Collector[] = [];
    let published = 0;
    const publish = (kind: string, resumeEvery?: number) =>
      publishers.map(async (client, p) => {
        for (let i = 0; i < 50; i++) {
          await post(client, name, `${kind} ${p}-${i}`);
          published += 1;
          if (resumeEvery && published % resumeEvery === 0) streams.push(events(reader, name, opening.id));
        }
      });
    await Promise.all(publish("stored"));
    published = 0;
    streams.push(events(reader, name, opening.id));
    await Promise.all(publish("live", 10));
    expect(streams.length).toBe(21);
    for (const stream of streams) {
      await stream.until(400, 20_000);
      expect(stream.messages().map((m) => m.seq)).toEqual(range(opening.seq + 1, opening.seq + 400));
      expect(stream.resets()).toEqual([]);
    }
    await post(publishers[0]!, name, "fence");
    for (const stream of streams) {
      await stream.until(401);
      expect(stream.items.length).toBe(401);
      stream.unsubscribe();
    }
  });

  it("the tier limit holds against concurrent subscribes on separate connections", async () => {
    const coupleId = uid("c");
    const couple = server.client({ sub: uid("couple"), role: "couple", couples: [coupleId] });
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      names.push(
        (
          await couple.trpc.channel.create.mutate({
            scope: "journey",
            entity: "milestone",
            entityId: `${coupleId}:m${i}`,
          })
        ).name,
      );
    }
    const results = await Promise.allSettled(
      names.map((channelName) => couple.trpc.channel.subscribe.mutate({ channelName })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(results.flatMap((r) => (r.status === "rejected" ? [errorCode(r.reason)] : []))).toEqual([
      "PRECONDITION_FAILED",
      "PRECONDITION_FAILED",
      "PRECONDITION_FAILED",
    ]);
    expect(await couple.trpc.channel.list.query()).toHaveLength(3);
  });
});
