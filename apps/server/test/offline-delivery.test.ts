import { randomUUID } from "node:crypto";
import { messageId } from "@wedsync/channels";
import type { ChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Claims,
  type Collector,
  events,
  eventually,
  post,
  primeLive,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

let server: TestServer;
/** Messages expire after 2 s here, to resume from before retention. */
let shortLived: TestServer;

beforeAll(async () => {
  [server, shortLived] = await Promise.all([
    // Rate limits are not what this file tests: the concurrent replay publishes hundreds of messages.
    startTestServer({ env: { CHANNELS_RATE_BROADCASTS_PER_MIN: "100000" } }),
    startTestServer({ env: { CHANNELS_RETENTION: "2s" } }),
  ]);
});

afterAll(async () => {
  await Promise.all([server?.stop(), shortLived?.stop()]);
});

interface Wedding {
  channel: string;
  channelId: string;
  supplier: ChannelsClient;
  coupleClaims: Claims;
}

async function wedding(target: TestServer = server): Promise<Wedding> {
  const supplierId = uid("s");
  const coupleId = uid("c");
  const supplier = target.client({ sub: uid("supplier"), role: "supplier", suppliers: [supplierId] });
  const created = await supplier.trpc.channel.create.mutate({
    scope: "collaboration",
    entity: supplierId,
    entityId: coupleId,
  });
  return {
    channel: created.name,
    channelId: created.id,
    supplier,
    coupleClaims: { sub: uid("couple"), role: "couple", couples: [coupleId] },
  };
}

const seqs = (stream: Collector) => stream.messages().map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("offline delivery over WebSocket", () => {
  it("a live subscriber gets every message published once its subscription has started", async () => {
    const w = await wedding();
    // Many fresh subscribers, each sent a message the moment `started` arrives: none may miss it.
    for (let i = 0; i < 10; i++) {
      const stream = events(server.client(w.coupleClaims), w.channel);
      await stream.started;
      const sent = await post(w.supplier, w.channel, `right after started ${i}`);
      await stream.until(1, 5_000);
      expect(stream.messages().map((m) => [m.seq, text(m)])).toEqual([
        [sent.seq, `right after started ${i}`],
      ]);
      stream.unsubscribe();
    }
  });

  it("subscribers joining a channel this instance already streams start at its current head", async () => {
    const w = await wedding();
    // The first stream reads the head from the store; the others start from what this instance
    // has seen live since: nothing published before their `started`, everything after it.
    const first = events(server.client(w.coupleClaims), w.channel);
    await first.started;
    const joined: Collector[] = [];
    for (let i = 0; i < 5; i++) {
      await post(w.supplier, w.channel, `before joiner ${i}`);
      const joiner = events(server.client(w.coupleClaims), w.channel);
      await joiner.started;
      joined.push(joiner);
    }
    const last = await post(w.supplier, w.channel, "after everyone");
    await first.until(6);
    expect(seqs(first)).toEqual(range(last.seq - 5, last.seq));
    for (const [i, joiner] of joined.entries()) {
      await joiner.until(5 - i);
      expect(seqs(joiner)).toEqual(range(last.seq - 4 + i, last.seq));
      joiner.unsubscribe();
    }
    first.unsubscribe();
  });

  it("a client back online gets exactly the messages it missed, in order, then live ones", async () => {
    const w = await wedding();
    const phone = server.client(w.coupleClaims);
    const online = events(phone, w.channel);
    const probeSeq = await primeLive(online, (n) => post(w.supplier, w.channel, `probe ${n}`));
    const resumeFrom = online.lastEventId!;
    expect(online.messages().at(-1)?.seq).toBe(probeSeq);

    await phone.close();
    const missed = ["Timeline: first dance at 21:00", "Florist arrives 14:00", "Cake moved to terrace"];
    for (const body of missed) await post(w.supplier, w.channel, body);

    const laptop = server.client(w.coupleClaims);
    const resumed = events(laptop, w.channel, resumeFrom);
    await resumed.until(3);
    expect(resumed.messages().map(text)).toEqual(missed);
    expect(seqs(resumed)).toEqual(range(probeSeq + 1, probeSeq + 3));

    await post(w.supplier, w.channel, "live 1");
    await post(w.supplier, w.channel, "live 2");
    await resumed.until(5);
    expect(resumed.messages().map(text)).toEqual([...missed, "live 1", "live 2"]);
    expect(seqs(resumed)).toEqual(range(probeSeq + 1, probeSeq + 5));
    expect(resumed.resets()).toEqual([]);
    // Each item's tracked id is the message id: what the client resumes from next time.
    expect(resumed.items.map((item) => item.id)).toEqual(resumed.messages().map((m) => m.id));
    expect(resumed.messages().every((m) => m.sentAt instanceof Date && m.channel === w.channel)).toBe(true);
    resumed.unsubscribe();
  });

  it("a connection cut by the network resumes by itself from the last event, without gap or duplicate", async () => {
    const w = await wedding();
    const { id: openingId, seq: openingSeq } = await post(w.supplier, w.channel, "opening");
    const couple = server.client(w.coupleClaims, { retryDelayMs: () => 200 });
    const stream = events(couple, w.channel, openingId);
    await post(w.supplier, w.channel, "before the cut");
    await stream.until(1);

    expect(server.dropConnections()).toBeGreaterThanOrEqual(1);
    // Sent while the client is (most likely) still waiting to reconnect.
    for (let i = 0; i < 5; i++) await post(w.supplier, w.channel, `during the cut ${i}`);
    await stream.until(6);
    await eventually(
      async () => server.openConnections(),
      (n) => n >= 1,
      "the client to reconnect",
    );
    await post(w.supplier, w.channel, "after the cut");
    await stream.until(7);

    expect(stream.messages().map(text)).toEqual([
      "before the cut",
      ...range(0, 4).map((i) => `during the cut ${i}`),
      "after the cut",
    ]);
    expect(seqs(stream)).toEqual(range(openingSeq + 1, openingSeq + 7));
    expect(stream.error).toBeUndefined();
    stream.unsubscribe();
  });

  it("resuming while messages are published concurrently delivers every seq exactly once, in order", async () => {
    const w = await wedding();
    const { id: openingId, seq: openingSeq } = await post(w.supplier, w.channel, "opening");
    const stored = 200;
    const live = 200;
    const couple = server.client(w.coupleClaims);
    const streams: Collector[] = [];
    let published = 0;
    const publish = (kind: string, count: number, resumeEvery?: number) =>
      Array.from({ length: 4 }, async (_, p) => {
        for (let i = 0; i < count / 4; i++) {
          await post(w.supplier, w.channel, `${kind} ${p}-${i}`);
          published += 1;
          // A new reader resumes every few messages, so the readers start at many different
          // points of the race: before the store read, during the replay, while going live.
          if (resumeEvery && published % resumeEvery === 0)
            streams.push(events(couple, w.channel, openingId));
        }
      });
    await Promise.all(publish("stored", stored));
    published = 0;
    streams.push(events(couple, w.channel, openingId));
    await Promise.all(publish("live", live, 20));
    expect(streams.length).toBe(1 + live / 20);

    const total = stored + live;
    for (const stream of streams) {
      await stream.until(total, 20_000);
      expect(seqs(stream)).toEqual(range(openingSeq + 1, openingSeq + total));
      expect(stream.resets()).toEqual([]);
      const texts = stream.messages().map(text);
      expect(texts.slice(0, stored).every((t) => t.startsWith("stored "))).toBe(true);
      // Each publisher's own messages arrive in the order it sent them.
      for (const kind of ["stored", "live"]) {
        for (let p = 0; p < 4; p++) {
          const mine = texts.filter((t) => t.startsWith(`${kind} ${p}-`));
          expect(mine).toEqual(range(0, 200 / 4 - 1).map((i) => `${kind} ${p}-${i}`));
        }
      }
    }

    // Nothing more trickles in afterwards: a fence message is the very next item of every reader.
    await post(w.supplier, w.channel, "fence");
    for (const stream of streams) {
      await stream.until(total + 1);
      expect(stream.items.length).toBe(total + 1);
      expect(text(stream.messages().at(-1)!)).toBe("fence");
      stream.unsubscribe();
    }
  });

  it("a resume point beyond the channel head is answered with a reset, then live messages", async () => {
    const w = await wedding();
    const couple = server.client(w.coupleClaims);
    for (let i = 0; i < 3; i++) await post(w.supplier, w.channel, `m${i}`);

    const stream = events(couple, w.channel, messageId(w.channelId, 50));
    await stream.until(1);
    expect(stream.items[0]?.data).toEqual({
      type: "reset",
      channel: w.channel,
      reason: "unknown",
      oldestSeq: 1,
    });

    await post(w.supplier, w.channel, "after the reset");
    await stream.until(2);
    expect(stream.messages().map((m) => [m.seq, text(m)])).toEqual([[4, "after the reset"]]);
    expect(stream.items.length).toBe(2);
    stream.unsubscribe();
  });

  it("a resume point from another epoch of the channel is answered with a reset, not silently replayed", async () => {
    const w = await wedding();
    const couple = server.client(w.coupleClaims);
    for (let i = 0; i < 3; i++) await post(w.supplier, w.channel, `m${i}`);

    // An id of a previous incarnation of the channel (deleted and recreated), or of nothing at all.
    const stream = events(couple, w.channel, messageId(randomUUID(), 2));
    await stream.until(1);
    expect(stream.items[0]?.data).toMatchObject({ type: "reset", channel: w.channel, reason: "unknown" });

    await post(w.supplier, w.channel, "after the reset");
    await stream.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && data.seq === 4),
      "the live message",
    );
    // After the reset, this epoch from its start: nothing of it is missing, nothing twice.
    expect(stream.items[0]?.data).toEqual({
      type: "reset",
      channel: w.channel,
      reason: "unknown",
      oldestSeq: 1,
    });
    expect(seqs(stream)).toEqual([1, 2, 3, 4]);
    expect(stream.items.length).toBe(5);
    stream.unsubscribe();
  });
});

describe("resuming past retention", () => {
  async function expiredHistory(count: number) {
    const w = await wedding(shortLived);
    const couple = shortLived.client(w.coupleClaims);
    await couple.trpc.channel.subscribe.mutate({ channelName: w.channel });
    const sent = [];
    for (let i = 0; i < count; i++) sent.push(await post(w.supplier, w.channel, `old ${i}`));
    const unread = async () =>
      (await couple.trpc.channel.list.query()).find((c) => c.name === w.channel)?.unread ?? -1;
    expect(await unread()).toBe(count);
    await eventually(unread, (n) => n === 0, "the old messages to expire", 10_000);
    return { w, couple, sent };
  }

  // Both scenarios wait for the same expiry.
  let allExpired: Awaited<ReturnType<typeof expiredHistory>>;
  let partlyExpired: Awaited<ReturnType<typeof expiredHistory>>;
  beforeAll(async () => {
    [allExpired, partlyExpired] = await Promise.all([expiredHistory(3), expiredHistory(3)]);
  });

  it("a client whose missed messages all expired is told so with a retention reset, then gets live ones", async () => {
    const { w, couple, sent } = allExpired;
    const stream = events(couple, w.channel, sent[0]!.id);
    await stream.until(1);
    expect(stream.items[0]?.data).toEqual({
      type: "reset",
      channel: w.channel,
      reason: "retention",
      oldestSeq: null,
    });

    await post(w.supplier, w.channel, "new 1");
    await stream.until(2);
    expect(stream.messages().map((m) => [m.seq, text(m)])).toEqual([[4, "new 1"]]);

    // Resuming from the reset's id does not report the same loss again.
    const again = events(couple, w.channel, stream.items[0]!.id);
    await again.until(1);
    expect(again.items.map(({ data }) => data.type)).toEqual(["message"]);
    expect(again.messages().map((m) => m.seq)).toEqual([4]);
    stream.unsubscribe();
    again.unsubscribe();
  });

  it("channel.subscribe from before retention reports the loss next to what it still has", async () => {
    const { w, couple, sent } = partlyExpired;
    const { missed, reset } = await couple.trpc.channel.subscribe.mutate({
      channelName: w.channel,
      lastMessageId: sent[0]!.id,
    });
    expect(reset).toMatchObject({ type: "reset", channel: w.channel, reason: "retention" });
    expect(reset?.oldestSeq ?? null).toBe(missed[0]?.seq ?? null);
    expect(missed.every((m) => m.seq > 3)).toBe(true);

    const fromHead = await couple.trpc.channel.subscribe.mutate({
      channelName: w.channel,
      lastMessageId: (missed.at(-1) ?? sent.at(-1))!.id,
    });
    expect(fromHead.reset).toBeNull();
  });

  it("a partly expired gap: a reset naming the oldest retained seq, then the retained messages, then live", async () => {
    const { w, couple, sent } = partlyExpired;
    await post(w.supplier, w.channel, "kept 1");
    await post(w.supplier, w.channel, "kept 2");
    const stream = events(couple, w.channel, sent[0]!.id);
    await stream.until(3);
    await post(w.supplier, w.channel, "live");
    await stream.until(4);

    expect(
      stream.items.map(({ data }) =>
        data.type === "reset" ? `reset:${data.reason}:${data.oldestSeq}` : `${data.seq}:${text(data)}`,
      ),
    ).toEqual(["reset:retention:4", "4:kept 1", "5:kept 2", "6:live"]);
  });
});
