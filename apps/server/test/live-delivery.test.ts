import type { ChannelMessage } from "@wedsync/channels";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { events, post, primeLive, startTestServer, type TestServer, text, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

const sample = async (name: string) => {
  const body = await (await fetch(`${server.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(body)?.[1] ?? Number.NaN);
};

const liveTexts = (messages: ChannelMessage[], after: number) =>
  messages.filter((m) => m.seq > after).map((m) => `${m.seq}:${text(m)}`);

describe("live delivery written straight to the socket", () => {
  it("several subscriptions on one connection each get exactly their channel's messages, in order", async () => {
    const supplierId = uid("s");
    const member = server.client({ sub: uid("u"), role: "supplier", suppliers: [supplierId] });
    const reader = server.client({ sub: uid("u"), role: "supplier", suppliers: [supplierId] });
    const [a, b] = await Promise.all(
      ["a", "b"].map((entityId) =>
        member.trpc.channel.create
          .mutate({ scope: "collaboration", entity: supplierId, entityId: uid(entityId) })
          .then((row) => row.name),
      ),
    );
    // Three streams on the reader's one WebSocket; two of them on the same channel.
    const streamA = events(reader, a!);
    const streamB = events(reader, b!);
    const streamA2 = events(reader, a!);
    const primedA = await primeLive(streamA, (n) => post(member, a!, `probe ${n}`));
    await primeLive(streamA2, (n) => post(member, a!, `probe again ${n}`));
    const primedB = await primeLive(streamB, (n) => post(member, b!, `probe ${n}`));
    const headA = (await post(member, a!, "fence")).seq;

    const before = await sample("channels_live_writes_total");
    const sentA: string[] = [];
    const sentB: string[] = [];
    let lastA = headA;
    for (let i = 0; i < 20; i++) {
      const channel = i % 3 === 0 ? b! : a!;
      const { seq } = await post(member, channel, `m${i}`);
      (channel === a ? sentA : sentB).push(`${seq}:m${i}`);
      if (channel === a) lastA = seq;
    }
    await streamA.until(headA - primedA + sentA.length);
    await streamA2.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && data.seq === lastA),
      "last of a",
    );
    await streamB.until(sentB.length + 1);
    const after = await sample("channels_live_writes_total");

    expect(liveTexts(streamA.messages(), headA)).toEqual(sentA);
    expect(liveTexts(streamA2.messages(), headA)).toEqual(sentA);
    expect(liveTexts(streamB.messages(), primedB)).toEqual(sentB);
    // Each broadcast was acknowledged before the next was sent, so every stream was waiting, caught
    // up, when its message arrived: all of them took the direct path.
    expect(after - before).toBe(2 * sentA.length + sentB.length);
  });
});
