import type { ChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Collector,
  codeOf,
  events,
  post,
  primeLive,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/** Messages of a stream, excluding the probes used to attach it. */
const received = (stream: Collector) =>
  stream
    .messages()
    .filter((m) => !text(m).startsWith("probe"))
    .map(text)
    .sort();

interface Wedding {
  supplierId: string;
  coupleId: string;
  channel: string;
  supplier: ChannelsClient;
  couple: ChannelsClient;
}

async function wedding(supplierId: string): Promise<Wedding> {
  const coupleId = uid("c");
  const supplier = server.client({ sub: uid("supplier-user"), role: "supplier", suppliers: [supplierId] });
  const couple = server.client({ sub: uid("couple-user"), role: "couple", couples: [coupleId] });
  const created = await supplier.trpc.channel.create.mutate({
    scope: "collaboration",
    entity: supplierId,
    entityId: coupleId,
  });
  expect(created.name).toBe(`collaboration:${supplierId}:${coupleId}`);
  return { supplierId, coupleId, channel: created.name, supplier, couple };
}

describe("weddings are isolated", () => {
  it("a couple's live stream carries only its own wedding's messages", async () => {
    const a = await wedding(uid("s1"));
    const b = await wedding(uid("s2"));

    const streamA = events(a.couple, a.channel);
    const streamB = events(b.couple, b.channel);
    await primeLive(streamA, (n) => post(a.supplier, a.channel, `probe ${n}`));
    await primeLive(streamB, (n) => post(b.supplier, b.channel, `probe ${n}`));

    const sentA: string[] = [];
    const sentB: string[] = [];
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 25; i++) {
      // Both sides of both weddings publish, interleaved and concurrently.
      const fromA = i % 2 === 0 ? a.supplier : a.couple;
      const fromB = i % 2 === 0 ? b.couple : b.supplier;
      sentA.push(`A-${i}`);
      sentB.push(`B-${i}`);
      sends.push(post(fromA, a.channel, `A-${i}`), post(fromB, b.channel, `B-${i}`));
    }
    await Promise.all(sends);
    // The fences are published after every other message was acknowledged (so fanned out).
    await post(a.supplier, a.channel, "A-fence");
    await post(b.supplier, b.channel, "B-fence");
    await streamA.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "A-fence"),
      "A-fence",
    );
    await streamB.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "B-fence"),
      "B-fence",
    );

    expect(received(streamA)).toEqual([...sentA, "A-fence"].sort());
    expect(received(streamB)).toEqual([...sentB, "B-fence"].sort());
    expect(new Set(streamA.messages().map((m) => m.channel))).toEqual(new Set([a.channel]));
    expect(new Set(streamB.messages().map((m) => m.channel))).toEqual(new Set([b.channel]));
    expect(streamA.resets()).toEqual([]);
    expect(streamB.resets()).toEqual([]);
    streamA.unsubscribe();
    streamB.unsubscribe();
  });

  it("two weddings of the same supplier are isolated from each other's couples", async () => {
    const supplierId = uid("s1");
    const first = await wedding(supplierId);
    const second = await wedding(supplierId);
    // The supplier's member sees both weddings; each couple only its own.
    const opening1 = await post(first.supplier, first.channel, "opening");
    const opening2 = await post(second.supplier, second.channel, "opening");
    const couple1 = events(first.couple, first.channel, opening1.id);
    const supplierView = events(first.supplier, second.channel, opening2.id);

    for (let i = 0; i < 10; i++) {
      await post(first.supplier, first.channel, `first-${i}`);
      await post(second.couple, second.channel, `second-${i}`);
    }
    await couple1.until(10);
    await supplierView.until(10);
    expect(couple1.messages().map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `first-${i}`));
    expect(supplierView.messages().map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `second-${i}`));

    // The other couple of the same supplier may not look in.
    const intruder = events(first.couple, second.channel, opening2.id);
    expect(await intruder.failure()).toBe("FORBIDDEN");
    expect(intruder.messages()).toEqual([]);
    expect(await codeOf(first.couple.trpc.channel.subscribe.mutate({ channelName: second.channel }))).toBe(
      "FORBIDDEN",
    );
    // Nothing of the second wedding is pending for the first couple.
    await first.couple.trpc.channel.subscribe.mutate({ channelName: first.channel });
    await post(second.supplier, second.channel, "second-late");
    await post(first.supplier, first.channel, "first-late");
    const pending = await first.couple.trpc.queue.pending.query();
    expect(pending.map((m) => [m.channel, text(m)])).toEqual([[first.channel, "first-late"]]);
    couple1.unsubscribe();
    supplierView.unsubscribe();
  });

  it("supplier dashboards of two suppliers are isolated", async () => {
    const s1 = uid("s1");
    const s2 = uid("s2");
    const member1 = server.client({ sub: uid("s1-member"), role: "supplier", suppliers: [s1] });
    const colleague1 = server.client({ sub: uid("s1-colleague"), role: "supplier", suppliers: [s1] });
    const member2 = server.client({ sub: uid("s2-member"), role: "supplier", suppliers: [s2] });
    const dash1 = (
      await member1.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s1 })
    ).name;
    const dash2 = (
      await member2.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s2 })
    ).name;

    const stream1 = events(colleague1, dash1);
    const stream2 = events(member2, dash2);
    await primeLive(stream1, (n) => post(member1, dash1, `probe ${n}`));
    await primeLive(stream2, (n) => post(member2, dash2, `probe ${n}`));

    await Promise.all(
      Array.from({ length: 15 }, (_, i) => [
        post(member1, dash1, `one-${i}`),
        post(member2, dash2, `two-${i}`),
      ]).flat(),
    );
    await post(member1, dash1, "one-fence");
    await post(member2, dash2, "two-fence");
    await stream1.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "one-fence"),
      "one-fence",
    );
    await stream2.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "two-fence"),
      "two-fence",
    );

    expect(received(stream1)).toEqual(
      [...Array.from({ length: 15 }, (_, i) => `one-${i}`), "one-fence"].sort(),
    );
    expect(received(stream2)).toEqual(
      [...Array.from({ length: 15 }, (_, i) => `two-${i}`), "two-fence"].sort(),
    );

    // Neither supplier can read or write the other's dashboard.
    expect(
      await codeOf(
        member1.trpc.channel.broadcast.mutate({
          channelName: dash2,
          event: "message.posted",
          payload: { text: "x" },
        }),
      ),
    ).toBe("FORBIDDEN");
    const peek = events(member2, dash1);
    expect(await peek.failure()).toBe("FORBIDDEN");
    stream1.unsubscribe();
    stream2.unsubscribe();
  });
});
