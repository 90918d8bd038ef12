import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ChannelStore,
  ChannelUnavailableError,
  type NewChannel,
  WebhookLimitError,
} from "../src/channel-store.ts";
import type { ChannelRow, MessageRow, NewAuditRow } from "../src/schema.ts";

export interface OpenedChannelStore {
  store: ChannelStore;
  close(): Promise<void>;
}

const HOUR = 60 * 60 * 1000;

/**
 * Behaviour every `ChannelStore` must have, whatever the database behind it.
 * Tests share one store (opened once) but each creates its own channels and
 * users, so they do not depend on each other; the few that sweep the whole
 * store (expiry, idle channels) first clear what earlier tests left behind.
 */
export function channelStoreContract(name: string, open: () => Promise<OpenedChannelStore>): void {
  describe(`ChannelStore contract: ${name}`, () => {
    let opened: OpenedChannelStore | undefined;
    const store = (): ChannelStore => {
      if (!opened) throw new Error("store not opened");
      return opened.store;
    };

    beforeAll(async () => {
      opened = await open();
    });

    afterAll(async () => {
      await opened?.close();
    });

    const uid = (label: string) => `${label}-${randomUUID().slice(0, 13)}`;
    const user = () => uid("user");

    function newChannel(overrides: Partial<NewChannel> = {}): NewChannel {
      const entityId = uid("c");
      return {
        name: `couple:dashboard:${entityId}`,
        type: "private",
        scope: "couple",
        entity: "dashboard",
        entityId,
        createdBy: "creator-1",
        metadata: {},
        ...overrides,
      };
    }

    async function channel(overrides: Partial<NewChannel> = {}): Promise<ChannelRow> {
      const { channel } = await store().upsertChannel(newChannel(overrides));
      if (!channel) throw new Error("the service actor must see every channel");
      return channel;
    }

    const inAnHour = () => new Date(Date.now() + HOUR);
    const anHourAgo = () => new Date(Date.now() - HOUR);

    async function append(
      channelId: string,
      options: { key?: string | null; expiresAt?: Date; payload?: unknown; senderId?: string } = {},
    ) {
      return store().appendMessage({
        channelId,
        event: "message.posted",
        payload: options.payload ?? { text: "hello" },
        senderId: options.senderId ?? "sender-1",
        idempotencyKey: options.key ?? null,
        expiresAt: options.expiresAt ?? inAnHour(),
      });
    }

    async function appendMany(channelId: string, n: number): Promise<MessageRow[]> {
      const out: MessageRow[] = [];
      for (let i = 0; i < n; i++)
        out.push((await append(channelId, { payload: { text: `m${i + 1}` } })).message);
      return out;
    }

    const seqs = (rows: ReadonlyArray<{ seq: number }>) => rows.map((r) => r.seq);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

    async function subscribe(
      channelId: string,
      userId: string,
      fromSeq: number | null = null,
      maxActive = 10,
      missedLimit = 100,
      now = new Date(),
    ) {
      return store().subscribe({ channelId, userId, fromSeq, maxActive, missedLimit, now });
    }

    describe("channels", () => {
      it("channelHeads reports the head of each existing channel asked for", async () => {
        const [a, b] = [await channel(), await channel()];
        await appendMany(a.id, 3);
        const heads = await store().channelHeads([a.id, b.id, randomUUID()]);
        expect(Object.fromEntries(heads.map((h) => [h.id, h.lastSeq]))).toEqual({ [a.id]: 3, [b.id]: 0 });
        expect(await store().channelHeads([])).toEqual([]);
      });

      it("upsertChannel creates once, then returns the existing channel unchanged", async () => {
        const input = newChannel({ type: "shared", metadata: { title: "Smith wedding" } });
        const first = await store().upsertChannel(input);
        expect(first.created).toBe(true);
        expect(first.channel).toMatchObject({
          name: input.name,
          type: "shared",
          scope: "couple",
          entity: "dashboard",
          entityId: input.entityId,
          createdBy: "creator-1",
          metadata: { title: "Smith wedding" },
          lastSeq: 0,
        });
        expect(first.channel?.id).toEqual(expect.any(String));
        expect(first.channel?.createdAt).toBeInstanceOf(Date);

        const second = await store().upsertChannel({
          ...input,
          createdBy: "someone-else",
          metadata: { x: 1 },
        });
        expect(second.created).toBe(false);
        expect(second.channel?.id).toBe(first.channel?.id);
        expect(second.channel?.createdBy).toBe("creator-1");
        expect(second.channel?.metadata).toEqual({ title: "Smith wedding" });
      });

      it("concurrent upserts of one name create exactly one channel", async () => {
        const input = newChannel();
        const results = await Promise.all(Array.from({ length: 8 }, () => store().upsertChannel(input)));
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.channel?.id)).size).toBe(1);
      });

      it("findChannel returns the channel by name, undefined for an unknown name", async () => {
        const created = await channel();
        expect((await store().findChannel(created.name))?.id).toBe(created.id);
        expect(await store().findChannel(`couple:dashboard:${uid("missing")}`)).toBeUndefined();
      });
    });

    describe("appendMessage", () => {
      it("assigns seq 1, 2, 3 per channel, independently across channels", async () => {
        const a = await channel();
        const b = await channel();
        const got: Array<[string, number]> = [];
        for (const id of [a.id, b.id, a.id, a.id, b.id, b.id]) {
          got.push([id, (await append(id)).message.seq]);
        }
        expect(got.filter(([id]) => id === a.id).map(([, s]) => s)).toEqual([1, 2, 3]);
        expect(got.filter(([id]) => id === b.id).map(([, s]) => s)).toEqual([1, 2, 3]);
        expect((await store().findChannel(a.name))?.lastSeq).toBe(3);
        expect((await store().findChannel(b.name))?.lastSeq).toBe(3);
      });

      it("stores the message as given", async () => {
        const ch = await channel();
        const expiresAt = new Date(Math.floor(Date.now() / 1000) * 1000 + HOUR);
        const payload = { text: "ünïcødé ✓", n: 42, nested: { list: [1, "two", null] } };
        const { message, duplicate } = await store().appendMessage({
          channelId: ch.id,
          event: "timeline.updated",
          payload,
          senderId: "sender-9",
          idempotencyKey: null,
          expiresAt,
        });
        expect(duplicate).toBe(false);
        expect(message).toMatchObject({
          channelId: ch.id,
          seq: 1,
          event: "timeline.updated",
          payload,
          senderId: "sender-9",
          idempotencyKey: null,
        });
        expect(message.expiresAt.getTime()).toBe(expiresAt.getTime());
        expect(message.createdAt).toBeInstanceOf(Date);
        const [read] = await store().readMessages(ch.id, 0, 10, new Date());
        expect(read).toEqual(message);
      });

      it("50 concurrent appends on one channel get seqs exactly 1..50", async () => {
        const ch = await channel();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => append(ch.id, { payload: { text: `m${i}` } })),
        );
        expect(results.every((r) => !r.duplicate)).toBe(true);
        expect(seqs(results.map((r) => r.message)).sort((x, y) => x - y)).toEqual(range(1, 50));
        expect(seqs(await store().readMessages(ch.id, 0, 100, new Date()))).toEqual(range(1, 50));
        expect((await store().findChannel(ch.name))?.lastSeq).toBe(50);
      });

      it("rejects a message for a channel that does not exist", async () => {
        await expect(append(randomUUID())).rejects.toThrow();
      });

      it("an idempotency key already used returns the stored message without using a seq", async () => {
        const ch = await channel();
        const other = await channel();
        const key = uid("key");
        const first = await append(ch.id, { key, payload: { text: "first" } });
        expect(first.duplicate).toBe(false);
        expect(first.message.seq).toBe(1);
        expect(first.message.idempotencyKey).toBe(key);

        const retry = await append(ch.id, { key, payload: { text: "retried" } });
        expect(retry.duplicate).toBe(true);
        expect(retry.message.seq).toBe(1);
        expect(retry.message.payload).toEqual({ text: "first" });

        const rows = await store().readMessages(ch.id, 0, 10, new Date());
        expect(rows).toHaveLength(1);
        expect(rows[0]?.payload).toEqual({ text: "first" });

        const next = await append(ch.id);
        expect(next.message.seq).toBe(2);
        expect((await store().findChannel(ch.name))?.lastSeq).toBe(2);

        // Keys are per channel.
        const elsewhere = await append(other.id, { key });
        expect(elsewhere.duplicate).toBe(false);
        expect(elsewhere.message.seq).toBe(1);
      });

      it("10 concurrent appends with one idempotency key store one message and leave no seq gap", async () => {
        const ch = await channel();
        const key = uid("key");
        const results = await Promise.all(Array.from({ length: 10 }, () => append(ch.id, { key })));
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(results.map((r) => r.message.seq))).toEqual(new Set([1]));
        expect(await store().readMessages(ch.id, 0, 10, new Date())).toHaveLength(1);

        const next = await append(ch.id);
        expect(next.message.seq).toBe(2);
        expect(seqs(await store().readMessages(ch.id, 0, 10, new Date()))).toEqual([1, 2]);
      });
    });

    describe("reading and retention", () => {
      it("readMessages returns messages after the cursor, ascending, at most limit", async () => {
        const ch = await channel();
        await appendMany(ch.id, 5);
        const now = new Date();
        expect(seqs(await store().readMessages(ch.id, 0, 2, now))).toEqual([1, 2]);
        expect(seqs(await store().readMessages(ch.id, 2, 2, now))).toEqual([3, 4]);
        expect(seqs(await store().readMessages(ch.id, 4, 10, now))).toEqual([5]);
        expect(await store().readMessages(ch.id, 5, 10, now)).toEqual([]);
        expect(await store().readMessages(randomUUID(), 0, 10, now)).toEqual([]);
      });

      it("readMessages never returns expired messages", async () => {
        const ch = await channel();
        await append(ch.id, { expiresAt: anHourAgo() });
        await append(ch.id);
        await append(ch.id, { expiresAt: anHourAgo() });
        await append(ch.id);
        expect(seqs(await store().readMessages(ch.id, 0, 10, new Date()))).toEqual([2, 4]);
        // "now" is the caller's: later, everything has expired.
        expect(await store().readMessages(ch.id, 0, 10, new Date(Date.now() + 2 * HOUR))).toEqual([]);
      });

      it("retainedRange reports the oldest unexpired seq and the channel head", async () => {
        const ch = await channel();
        expect(await store().retainedRange(ch.id, new Date())).toEqual({ oldestSeq: null, lastSeq: 0 });

        await append(ch.id, { expiresAt: anHourAgo() });
        expect(await store().retainedRange(ch.id, new Date())).toEqual({ oldestSeq: null, lastSeq: 1 });

        await append(ch.id);
        await append(ch.id);
        expect(await store().retainedRange(ch.id, new Date())).toEqual({ oldestSeq: 2, lastSeq: 3 });
        expect(await store().retainedRange(ch.id, new Date(Date.now() + 2 * HOUR))).toEqual({
          oldestSeq: null,
          lastSeq: 3,
        });
      });
    });

    describe("subscriptions", () => {
      it("a subscribe to a channel that is gone fails as unavailable, even at the tier limit, and takes no cursor", async () => {
        const ch = await channel();
        const u = user();
        expect((await subscribe(ch.id, u, null, 1)).ok).toBe(true);
        const gone = randomUUID();
        await expect(subscribe(gone, u, null, 1)).rejects.toBeInstanceOf(ChannelUnavailableError);
        await expect(subscribe(gone, user())).rejects.toBeInstanceOf(ChannelUnavailableError);
        expect(await store().activeSubscription(gone, u)).toBeUndefined();
      });

      it("a first subscribe starts the cursor at the channel head (no history)", async () => {
        const ch = await channel();
        await appendMany(ch.id, 3);
        const u = user();
        const result = await subscribe(ch.id, u);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(result.activeCount).toBe(1);
        expect(result.subscription).toMatchObject({
          channelId: ch.id,
          userId: u,
          cursorSeq: 3,
          active: true,
        });
        expect(await store().pendingMessages(u, 100, new Date())).toEqual([]);
        expect((await store().activeSubscription(ch.id, u))?.cursorSeq).toBe(3);

        await append(ch.id);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([4]);
      });

      it("subscribe returns what the client missed after its cursor and the channel head", async () => {
        const ch = await channel();
        await appendMany(ch.id, 4);
        const u = user();
        const result = await subscribe(ch.id, u, 1);
        expect(result.ok && seqs(result.missed)).toEqual([2, 3, 4]);
        expect(result.ok && result.lastSeq).toBe(4);

        const limited = await subscribe(ch.id, user(), 0, 10, 2);
        expect(limited.ok && seqs(limited.missed)).toEqual([1, 2]);

        // Read at `now`: what has expired by then is neither missed nor retained.
        const later = await subscribe(ch.id, user(), 1, 10, 100, new Date(Date.now() + 2 * HOUR));
        expect(later.ok && later.missed).toEqual([]);
        expect(later.ok && later.lastSeq).toBe(4);

        const fresh = await subscribe(ch.id, user());
        expect(fresh.ok && fresh.missed).toEqual([]);
      });

      it("subscribe honours fromSeq", async () => {
        const ch = await channel();
        await appendMany(ch.id, 3);
        const u = user();
        const result = await subscribe(ch.id, u, 1);
        expect(result.ok && result.subscription.cursorSeq).toBe(1);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([2, 3]);

        const fromZero = user();
        await subscribe(ch.id, fromZero, 0);
        expect(seqs(await store().pendingMessages(fromZero, 100, new Date()))).toEqual([1, 2, 3]);
      });

      it("a fromSeq beyond the head starts at the head, so later messages are not hidden", async () => {
        const ch = await channel();
        await appendMany(ch.id, 2);
        const u = user();
        const result = await subscribe(ch.id, u, 999);
        expect(result.ok && result.subscription.cursorSeq).toBe(2);
        await append(ch.id);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([3]);
      });

      it("re-subscribing while active keeps the cursor and does not count twice", async () => {
        const ch = await channel();
        await appendMany(ch.id, 2);
        const u = user();
        await subscribe(ch.id, u);
        await appendMany(ch.id, 3);
        const again = await subscribe(ch.id, u);
        expect(again.ok).toBe(true);
        if (!again.ok) return;
        expect(again.subscription.cursorSeq).toBe(2);
        expect(again.activeCount).toBe(1);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([3, 4, 5]);
        expect(await store().listSubscribers(ch.id)).toHaveLength(1);
      });

      it("maxActive refuses one subscription too many; re-subscribing at the limit and unsubscribing are fine", async () => {
        const u = user();
        const chans = await Promise.all(Array.from({ length: 4 }, () => channel()));
        const [c1, c2, c3, c4] = chans as [ChannelRow, ChannelRow, ChannelRow, ChannelRow];
        const counts: number[] = [];
        for (const ch of [c1, c2, c3]) {
          const r = await subscribe(ch.id, u, null, 3);
          expect(r.ok).toBe(true);
          counts.push(r.activeCount);
        }
        expect(counts).toEqual([1, 2, 3]);

        const refused = await subscribe(c4.id, u, null, 3);
        expect(refused).toEqual({ ok: false, activeCount: 3 });
        expect(await store().activeSubscription(c4.id, u)).toBeUndefined();

        const again = await subscribe(c2.id, u, null, 3);
        expect(again.ok).toBe(true);
        expect(again.activeCount).toBe(3);

        expect(await store().unsubscribe(c1.id, u)).toBe(true);
        const now = await subscribe(c4.id, u, null, 3);
        expect(now.ok).toBe(true);
        expect(now.activeCount).toBe(3);
        expect((await store().listUserChannels(u, new Date())).map((c) => c.channel.id).sort()).toEqual(
          [c2.id, c3.id, c4.id].sort(),
        );
      });

      it("concurrent subscribes of one user to 5 channels with maxActive 3: exactly 3 succeed", async () => {
        const u = user();
        const chans = await Promise.all(Array.from({ length: 5 }, () => channel()));
        const results = await Promise.all(chans.map((ch) => subscribe(ch.id, u, null, 3)));
        expect(results.filter((r) => r.ok)).toHaveLength(3);
        expect(results.filter((r) => !r.ok).every((r) => r.activeCount === 3)).toBe(true);
        expect(await store().listUserChannels(u, new Date())).toHaveLength(3);
        // Another user is not limited by the first one's subscriptions.
        const other = await subscribe(chans[0]!.id, user(), null, 1);
        expect(other.ok).toBe(true);
      });

      it("unsubscribe returns false when not active, true once when active", async () => {
        const ch = await channel();
        const u = user();
        expect(await store().unsubscribe(ch.id, u)).toBe(false);
        await subscribe(ch.id, u);
        expect(await store().unsubscribe(ch.id, u)).toBe(true);
        expect(await store().unsubscribe(ch.id, u)).toBe(false);
        expect(await store().activeSubscription(ch.id, u)).toBeUndefined();
        expect(await store().unsubscribe(randomUUID(), u)).toBe(false);
      });

      it("listSubscribers lists only active subscriptions of that channel", async () => {
        const ch = await channel();
        const other = await channel();
        const [u1, u2, u3] = [user(), user(), user()];
        for (const u of [u1, u2, u3]) await subscribe(ch.id, u);
        await subscribe(other.id, user());
        await store().unsubscribe(ch.id, u2);
        const subs = await store().listSubscribers(ch.id);
        expect(subs.map((s) => s.userId).sort()).toEqual([u1, u3].sort());
        expect(subs.every((s) => s.active && s.channelId === ch.id)).toBe(true);
        expect(await store().listSubscribers(randomUUID())).toEqual([]);
      });
    });

    describe("pending messages and acks", () => {
      it("pendingMessages returns unexpired messages after the cursor of the user's active subscriptions", async () => {
        const a = await channel();
        const b = await channel();
        const unsubscribed = await channel();
        const u = user();
        await subscribe(a.id, u);
        await subscribe(b.id, u);
        await subscribe(unsubscribed.id, u);
        await store().unsubscribe(unsubscribed.id, u);

        await append(a.id);
        await append(b.id);
        await append(a.id, { expiresAt: anHourAgo() });
        await append(a.id);
        await append(unsubscribed.id);

        const pending = await store().pendingMessages(u, 100, new Date());
        expect(pending.map((m) => `${m.channelName}#${m.seq}`).sort()).toEqual(
          [`${a.name}#1`, `${a.name}#3`, `${b.name}#1`].sort(),
        );
        expect(seqs(pending.filter((m) => m.channelId === a.id))).toEqual([1, 3]);
        for (const m of pending) expect(m.channelName).toBe(m.channelId === a.id ? a.name : b.name);

        expect(await store().pendingMessages(u, 2, new Date())).toHaveLength(2);
        expect(await store().pendingMessages(user(), 100, new Date())).toEqual([]);
      });

      it("pendingMessages never includes another user's channels", async () => {
        const chA = await channel();
        const chB = await channel();
        const [userA, userB] = [user(), user()];
        await subscribe(chA.id, userA, 0);
        await subscribe(chB.id, userB, 0);
        await appendMany(chA.id, 2);
        await appendMany(chB.id, 3);

        const pendingA = await store().pendingMessages(userA, 100, new Date());
        const pendingB = await store().pendingMessages(userB, 100, new Date());
        expect(pendingA.map((m) => m.channelId)).toEqual([chA.id, chA.id]);
        expect(pendingB.map((m) => m.channelId)).toEqual([chB.id, chB.id, chB.id]);
        expect(pendingA.some((m) => m.channelName === chB.name)).toBe(false);
        expect(pendingB.some((m) => m.channelName === chA.name)).toBe(false);

        // Acking B's channel as A neither moves B's cursor nor shows A anything new.
        expect(await store().ack(userA, [{ channelId: chB.id, seq: 3 }])).toBe(0);
        expect(await store().pendingMessages(userB, 100, new Date())).toHaveLength(3);
        expect((await store().activeSubscription(chB.id, userB))?.cursorSeq).toBe(0);
      });

      it("paging pendingMessages and acking walks a channel in seq order without skipping", async () => {
        const ch = await channel();
        const u = user();
        await subscribe(ch.id, u, 0);
        await Promise.all(Array.from({ length: 30 }, () => append(ch.id)));

        const seen: number[] = [];
        for (let round = 0; round < 10; round++) {
          const page = await store().pendingMessages(u, 7, new Date());
          if (page.length === 0) break;
          const cursor = seen.length;
          expect(seqs(page)).toEqual(range(cursor + 1, cursor + page.length));
          seen.push(...seqs(page));
          await store().ack(u, [{ channelId: ch.id, seq: page[page.length - 1]!.seq }]);
        }
        expect(seen).toEqual(range(1, 30));
      });

      it("ack moves the cursor forward only", async () => {
        const ch = await channel();
        const u = user();
        await subscribe(ch.id, u, 0);
        await appendMany(ch.id, 5);

        expect(await store().ack(u, [{ channelId: ch.id, seq: 3 }])).toBe(1);
        expect((await store().activeSubscription(ch.id, u))?.cursorSeq).toBe(3);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([4, 5]);

        expect(await store().ack(u, [{ channelId: ch.id, seq: 2 }])).toBe(0);
        expect(await store().ack(u, [{ channelId: ch.id, seq: 3 }])).toBe(0);
        expect((await store().activeSubscription(ch.id, u))?.cursorSeq).toBe(3);

        // Several acks of one channel: the highest wins, whatever the order.
        expect(
          await store().ack(u, [
            { channelId: ch.id, seq: 4 },
            { channelId: ch.id, seq: 1 },
          ]),
        ).toBe(1);
        expect((await store().activeSubscription(ch.id, u))?.cursorSeq).toBe(4);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([5]);
        expect(await store().ack(u, [])).toBe(0);
      });

      it("ack of channels the user is not subscribed to moves nothing", async () => {
        const subscribed = await channel();
        const never = await channel();
        const left = await channel();
        const u = user();
        await subscribe(subscribed.id, u, 0);
        await subscribe(left.id, u, 0);
        await store().unsubscribe(left.id, u);
        await appendMany(subscribed.id, 2);
        await appendMany(never.id, 2);
        await appendMany(left.id, 2);

        expect(
          await store().ack(u, [
            { channelId: never.id, seq: 2 },
            { channelId: left.id, seq: 2 },
            { channelId: randomUUID(), seq: 2 },
          ]),
        ).toBe(0);
        expect(await store().activeSubscription(never.id, u)).toBeUndefined();
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([1, 2]);

        // Acking a mix moves only the subscribed channel.
        expect(
          await store().ack(u, [
            { channelId: never.id, seq: 2 },
            { channelId: subscribed.id, seq: 1 },
          ]),
        ).toBe(1);
        expect(seqs(await store().pendingMessages(u, 100, new Date()))).toEqual([2]);
      });

      it("listUserChannels lists active subscriptions with unread counts", async () => {
        const a = await channel();
        const b = await channel();
        const gone = await channel();
        const u = user();
        await subscribe(a.id, u, 0);
        await subscribe(b.id, u);
        await subscribe(gone.id, u);
        await store().unsubscribe(gone.id, u);
        await appendMany(a.id, 3);
        await append(a.id, { expiresAt: anHourAgo() });
        await appendMany(gone.id, 2);

        const list = async () =>
          new Map((await store().listUserChannels(u, new Date())).map((c) => [c.channel.id, c]));
        let byId = await list();
        expect([...byId.keys()].sort()).toEqual([a.id, b.id].sort());
        expect(byId.get(a.id)).toMatchObject({ cursorSeq: 0, unread: 3 });
        expect(byId.get(a.id)?.channel).toMatchObject({ name: a.name, lastSeq: 4 });
        expect(byId.get(b.id)).toMatchObject({ cursorSeq: 0, unread: 0 });

        await store().ack(u, [{ channelId: a.id, seq: 2 }]);
        await append(b.id);
        byId = await list();
        expect(byId.get(a.id)).toMatchObject({ cursorSeq: 2, unread: 1 });
        expect(byId.get(b.id)).toMatchObject({ cursorSeq: 0, unread: 1 });

        expect(await store().listUserChannels(user(), new Date())).toEqual([]);
      });
    });

    describe("cleanup", () => {
      it("deleteExpiredMessages deletes and counts expired messages only; seqs are never reused", async () => {
        await store().deleteExpiredMessages(new Date()); // whatever earlier tests left
        const ch = await channel();
        await append(ch.id, { expiresAt: anHourAgo() });
        await append(ch.id);
        await append(ch.id, { expiresAt: anHourAgo() });
        await append(ch.id, { expiresAt: new Date(Date.now() - 1000) });
        await append(ch.id);

        expect(await store().deleteExpiredMessages(new Date())).toBe(3);
        expect(await store().deleteExpiredMessages(new Date())).toBe(0);
        // Read "as of" long ago: only what is physically left.
        expect(seqs(await store().readMessages(ch.id, 0, 10, new Date(0)))).toEqual([2, 5]);
        expect((await append(ch.id)).message.seq).toBe(6);
      });

      it("deleteExpiredMessages works through more than one batch, letting the event loop run between", async () => {
        await store().deleteExpiredMessages(new Date()); // whatever earlier tests left
        const ch = await channel();
        const base = await store().queuedMessages(new Date());
        await Promise.all(Array.from({ length: 1_005 }, () => append(ch.id, { expiresAt: anHourAgo() })));
        await appendMany(ch.id, 2);
        let finished = false;
        let turnedDuring = false;
        setImmediate(() => {
          turnedDuring = !finished;
        });
        expect(await store().deleteExpiredMessages(new Date())).toBe(1_005);
        finished = true;
        expect(turnedDuring).toBe(true);
        expect(seqs(await store().readMessages(ch.id, 0, 10, new Date(0)))).toEqual([1_006, 1_007]);
        expect(await store().queuedMessages(new Date())).toBe(base + 2);
      });

      it("the queued count stays exact through cleanup and channel deletion", async () => {
        const soon = () => new Date(Date.now() + 60_000);
        await store().deleteInactiveChannels(soon()); // whatever earlier tests left
        const queued = () => store().queuedMessages(new Date());
        const base = await queued();
        const kept = await channel();
        await subscribe(kept.id, user());
        const idle = await channel();
        await append(kept.id, { expiresAt: anHourAgo() });
        await append(kept.id);
        await append(kept.id, { expiresAt: anHourAgo() });
        await appendMany(idle.id, 2);
        expect(await queued()).toBe(base + 3);

        // Deleting what expired leaves the unexpired count as it was.
        expect(await store().deleteExpiredMessages(new Date())).toBeGreaterThanOrEqual(2);
        expect(await queued()).toBe(base + 3);
        await append(kept.id);
        expect(await queued()).toBe(base + 4);
        // A deleted channel takes its messages out of the count.
        expect(await store().deleteInactiveChannels(soon())).toEqual([idle.id]);
        expect(await queued()).toBe(base + 2);
        expect((await store().counts(new Date())).queuedMessages).toBe(base + 2);
      });

      it("deleteInactiveChannels deletes idle channels nobody is subscribed to, with their messages", async () => {
        const soon = () => new Date(Date.now() + 60_000);
        await store().deleteInactiveChannels(soon()); // whatever earlier tests left
        const idle = await channel();
        const watched = await channel();
        const abandoned = await channel();
        await appendMany(idle.id, 2);
        await appendMany(abandoned.id, 1);
        const u = user();
        await subscribe(watched.id, u);
        await subscribe(abandoned.id, u, 0);
        await store().unsubscribe(abandoned.id, u);

        // Nothing here has been idle for an hour.
        await store().deleteInactiveChannels(anHourAgo());
        expect(await store().findChannel(idle.name)).toBeDefined();

        expect((await store().deleteInactiveChannels(soon()))?.sort()).toEqual(
          [idle.id, abandoned.id].sort(),
        );
        expect(await store().findChannel(idle.name)).toBeUndefined();
        expect(await store().findChannel(abandoned.name)).toBeUndefined();
        expect((await store().findChannel(watched.name))?.id).toBe(watched.id);
        expect(await store().readMessages(idle.id, 0, 10, new Date(0))).toEqual([]);
        expect(await store().readMessages(abandoned.id, 0, 10, new Date(0))).toEqual([]);
        expect(await store().listSubscribers(watched.id)).toHaveLength(1);
        expect(await store().deleteInactiveChannels(soon())).toEqual([]);
      });

      it("deleteInactiveChannels works through more than one batch, letting the event loop run between", async () => {
        const soon = () => new Date(Date.now() + 60_000);
        await store().deleteInactiveChannels(soon()); // whatever earlier tests left
        const idle = await Promise.all(Array.from({ length: 105 }, () => channel()));
        const watched = await channel();
        await subscribe(watched.id, user());
        let finished = false;
        let turnedDuring = false;
        setImmediate(() => {
          turnedDuring = !finished;
        });
        const deleted = await store().deleteInactiveChannels(soon());
        finished = true;
        expect(turnedDuring).toBe(true);
        expect(deleted?.sort()).toEqual(idle.map((c) => c.id).sort());
        expect((await store().findChannel(watched.name))?.id).toBe(watched.id);
        expect(await store().findChannel(idle[104]!.name)).toBeUndefined();
      });
    });

    describe("audit log", () => {
      it("writeAudit stores rows; readAudit pages newest first with beforeId and channelName", async () => {
        const channelName = `couple:dashboard:${uid("audit")}`;
        const otherName = `couple:dashboard:${uid("audit")}`;
        const row = (i: number, name: string | null): NewAuditRow => ({
          actorId: `actor-${i}`,
          action: "channel.broadcast",
          channelName: name,
          outcome: i % 2 === 0 ? "ok" : "denied",
          reason: i % 2 === 0 ? null : "forbidden",
          instanceId: "instance-1",
          detail: { i },
        });
        await store().writeAudit([]);
        await store().writeAudit([row(0, channelName), row(1, otherName), row(2, channelName)]);
        await store().writeAudit([
          row(3, channelName),
          row(4, channelName),
          row(5, channelName),
          row(6, null),
        ]);

        const page1 = await store().readAudit({ limit: 3, channelName });
        expect(page1.map((r) => r.detail)).toEqual([{ i: 5 }, { i: 4 }, { i: 3 }]);
        expect(page1[0]).toMatchObject({
          actorId: "actor-5",
          action: "channel.broadcast",
          channelName,
          outcome: "denied",
          reason: "forbidden",
          instanceId: "instance-1",
        });
        expect(page1[0]?.at).toBeInstanceOf(Date);
        expect(page1[0]?.id).toEqual(expect.any(Number));
        const ids = page1.map((r) => r.id);
        expect([...ids].sort((x, y) => y - x)).toEqual(ids);

        const page2 = await store().readAudit({ limit: 3, channelName, beforeId: page1[2]!.id });
        expect(page2.map((r) => r.detail)).toEqual([{ i: 2 }, { i: 0 }]);
        expect(await store().readAudit({ limit: 3, channelName, beforeId: page2[1]!.id })).toEqual([]);

        const newest = await store().readAudit({ limit: 2 });
        expect(newest.map((r) => r.detail)).toEqual([{ i: 6 }, { i: 5 }]);
        expect(newest[0]?.channelName).toBeNull();
        const before = await store().readAudit({ limit: 2, beforeId: newest[1]!.id });
        expect(before.map((r) => r.detail)).toEqual([{ i: 4 }, { i: 3 }]);

        expect((await store().readAudit({ limit: 10, channelName: otherName })).map((r) => r.detail)).toEqual(
          [{ i: 1 }],
        );
      });
    });

    describe("grants", () => {
      it("grants once, lists, and revokes, deactivating the revoked user's subscription", async () => {
        const c = await channel();
        const [guest, other] = [user(), user()];
        expect(await store().grant(c.id, guest, "creator-1")).toBe(true);
        expect(await store().grant(c.id, guest, "creator-1")).toBe(false);
        expect(await store().hasGrant(c.id, guest)).toBe(true);
        expect(await store().hasGrant(c.id, other)).toBe(false);
        expect((await store().listGrants(c.id)).map((g) => [g.userId, g.grantedBy])).toEqual([
          [guest, "creator-1"],
        ]);

        await subscribe(c.id, guest);
        expect(await store().activeSubscription(c.id, guest)).toBeDefined();
        expect(await store().revoke(c.id, guest)).toBe(true);
        expect(await store().hasGrant(c.id, guest)).toBe(false);
        expect(await store().activeSubscription(c.id, guest)).toBeUndefined();
        expect(await store().revoke(c.id, guest)).toBe(false);
      });

      it("revoking a user without a grant keeps their subscription", async () => {
        const c = await channel();
        const member = user();
        await subscribe(c.id, member);
        expect(await store().revoke(c.id, member)).toBe(false);
        expect(await store().activeSubscription(c.id, member)).toBeDefined();
      });

      it("grants of one channel say nothing about another", async () => {
        const [a, b] = [await channel(), await channel()];
        const guest = user();
        await store().grant(a.id, guest, "creator-1");
        expect(await store().hasGrant(b.id, guest)).toBe(false);
      });
    });

    describe("webhooks and their outbox", () => {
      const LEASE = 30_000;
      const FAR = () => new Date(Date.now() + 10 * 365 * 24 * HOUR);
      /** Claims are store-wide: completes whatever is due from earlier tests, so a test sees only its own. */
      async function drain() {
        for (;;) {
          const due = await store().claimWebhookDeliveries({ now: FAR(), limit: 1_000, leaseMs: LEASE });
          if (due.length === 0) return;
          for (const row of due) await store().completeWebhookDelivery(row.id, new Date());
        }
      }
      // Rows are due from the database's now(); a second ahead absorbs clock resolution differences.
      const soon = () => new Date(Date.now() + 1_000);
      const claim = (now = soon(), limit = 100, leaseMs = LEASE) =>
        store().claimWebhookDeliveries({ now, limit, leaseMs });
      async function webhook(channelId: string, url = "https://example.com/hook") {
        return store().addWebhook({ channelId, url, secret: uid("secret"), createdBy: "creator-1" });
      }

      it("maxPerChannel holds under concurrent adds: the rest fail with WebhookLimitError", async () => {
        const ch = await channel();
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            store().addWebhook({
              channelId: ch.id,
              url: `https://h${i}.example/in`,
              secret: uid("secret"),
              createdBy: "creator-1",
              maxPerChannel: 4,
            }),
          ),
        );
        expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(4);
        const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
        expect(refused).toHaveLength(2);
        for (const reason of refused) expect(reason).toBeInstanceOf(WebhookLimitError);
        expect(await store().listWebhooks(ch.id)).toHaveLength(4);
      });

      it("adds, lists (oldest first) and removes a channel's webhooks; ids of another channel remove nothing", async () => {
        const ch = await channel();
        const other = await channel();
        const a = await webhook(ch.id, "https://a.example/hook");
        const b = await webhook(ch.id, "http://127.0.0.1:9/b");
        const elsewhere = await webhook(other.id);
        expect(a).toMatchObject({ channelId: ch.id, url: "https://a.example/hook", createdBy: "creator-1" });
        expect(a.id).toEqual(expect.any(String));
        expect(a.secret).toEqual(expect.any(String));
        expect(a.createdAt).toBeInstanceOf(Date);
        expect((await store().listWebhooks(ch.id)).map((w) => w.id)).toEqual([a.id, b.id]);

        expect(await store().removeWebhook(ch.id, elsewhere.id)).toBe(false);
        expect(await store().removeWebhook(ch.id, randomUUID())).toBe(false);
        expect(await store().removeWebhook(ch.id, a.id)).toBe(true);
        expect(await store().removeWebhook(ch.id, a.id)).toBe(false);
        expect((await store().listWebhooks(ch.id)).map((w) => w.id)).toEqual([b.id]);
        expect((await store().listWebhooks(other.id)).map((w) => w.id)).toEqual([elsewhere.id]);
        expect(await store().listWebhooks(randomUUID())).toEqual([]);
      });

      it("appendMessage queues one outbox row per webhook of the channel, none for other channels or duplicates", async () => {
        const ch = await channel();
        const plain = await channel();
        await append(ch.id); // before any webhook: never queued
        const [a, b] = [await webhook(ch.id), await webhook(ch.id)];
        const key = uid("key");
        const first = await append(ch.id, { key });
        expect((await append(ch.id, { key })).duplicate).toBe(true);
        await append(plain.id);
        const second = await append(ch.id);

        for (const hook of [a, b]) {
          const rows = await store().listWebhookOutbox(hook.id);
          expect(rows.map((r) => [r.channelId, r.seq])).toEqual([
            [ch.id, first.message.seq],
            [ch.id, second.message.seq],
          ]);
          expect(rows[0]).toMatchObject({
            webhookId: hook.id,
            attempts: 0,
            lastError: null,
            deliveredAt: null,
          });
          expect(rows[0]?.nextAttemptAt).toBeInstanceOf(Date);
        }
      });

      it("every message appended after addWebhook returned is queued, even with appends racing the add", async () => {
        const ch = await channel();
        const racing: Array<Promise<unknown>> = [];
        for (let i = 0; i < 10; i++) racing.push(append(ch.id));
        const hook = await webhook(ch.id);
        const after: Array<Promise<{ message: MessageRow }>> = [];
        for (let i = 0; i < 10; i++) after.push(append(ch.id));
        // Listed only once every append has returned: an append still running would not be visible yet.
        const [, later] = await Promise.all([Promise.all(racing), Promise.all(after)]);
        const queued = (await store().listWebhookOutbox(hook.id)).map((r) => r.seq).sort((x, y) => x - y);
        for (const { message } of later) expect(queued).toContain(message.seq);
        // Appends and addWebhook serialize on the channel row, so seq order is commit order: the webhook gets
        // exactly the messages committed after it, a suffix of the channel's seqs, without gaps.
        expect(queued).toEqual(range(21 - queued.length, 20));
        expect((await store().findChannel(ch.name))?.lastSeq).toBe(20);
      });

      it("claim returns due deliveries with message, url and secret, and leases them", async () => {
        await drain();
        const ch = await channel();
        const hook = await webhook(ch.id, "https://receiver.example/in");
        const { message } = await append(ch.id, { payload: { text: "to deliver" }, senderId: "sender-7" });

        const now = soon();
        const [delivery, ...rest] = await claim(now);
        expect(rest).toEqual([]);
        expect(delivery).toMatchObject({
          webhookId: hook.id,
          url: "https://receiver.example/in",
          secret: hook.secret,
          channelName: ch.name,
          attempts: 1,
        });
        expect(delivery?.id).toEqual(expect.any(Number));
        expect(delivery?.message).toEqual(message);

        // Leased: no claim gets it again until the lease runs out, then it is attempt 2.
        expect(await claim(now)).toEqual([]);
        expect(await claim(new Date(now.getTime() + LEASE - 1_000))).toEqual([]);
        const again = await claim(new Date(now.getTime() + LEASE + 1));
        expect(again.map((d) => [d.id, d.attempts])).toEqual([[delivery!.id, 2]]);
      });

      it("claim honours the limit, oldest due first", async () => {
        await drain();
        const ch = await channel();
        const hook = await webhook(ch.id);
        await appendMany(ch.id, 5);
        const first = await claim(soon(), 2);
        const second = await claim(soon(), 10);
        expect(first.map((d) => d.message.seq)).toEqual([1, 2]);
        expect(second.map((d) => d.message.seq)).toEqual([3, 4, 5]);
        expect(new Set([...first, ...second].map((d) => d.webhookId))).toEqual(new Set([hook.id]));
      });

      it("concurrent claims never hand out the same row twice", async () => {
        await drain();
        const ch = await channel();
        await webhook(ch.id);
        await webhook(ch.id);
        await appendMany(ch.id, 20);
        const now = soon();
        const batches = await Promise.all(Array.from({ length: 6 }, () => claim(now, 5)));
        const ids = batches.flat().map((d) => d.id);
        expect(new Set(ids).size).toBe(ids.length);
        // Whatever the claims skipped while locked is still there for the next one.
        const rest = await claim(now, 100);
        expect(new Set([...ids, ...rest.map((d) => d.id)]).size).toBe(40);
        expect(rest.every((d) => d.attempts === 1)).toBe(true);
      });

      it("nextWebhookAttemptAt is when the earliest row not delivered or given up on is due, null without one", async () => {
        await drain();
        expect(await store().nextWebhookAttemptAt()).toBeNull();
        const ch = await channel();
        await webhook(ch.id);
        await append(ch.id);
        const queued = await store().nextWebhookAttemptAt();
        expect(queued?.getTime()).toBeLessThanOrEqual(soon().getTime());

        const now = soon();
        const [delivery] = await claim(now);
        expect(await store().nextWebhookAttemptAt()).toEqual(new Date(now.getTime() + LEASE));
        const retryAt = new Date(now.getTime() + 5_000);
        await store().failWebhookDelivery({ id: delivery!.id, attempts: 1, error: "HTTP 500", retryAt });
        expect(await store().nextWebhookAttemptAt()).toEqual(retryAt);
        await store().failWebhookDelivery({ id: delivery!.id, attempts: 1, error: "gave up", retryAt: null });
        expect(await store().nextWebhookAttemptAt()).toBeNull();
      });

      it("onWebhookDeliveriesQueued hears each append that queued rows, until stopped; the rows are there to claim", async () => {
        const ch = await channel();
        const plain = await channel();
        const hook = await webhook(ch.id);
        // What a transaction the listener starts sees: what the worker's claim would see.
        const seen: Array<Promise<number>> = [];
        const stop = store().onWebhookDeliveriesQueued(() => {
          seen.push(
            store()
              .listWebhookOutbox(hook.id)
              .then((rows) => rows.length),
          );
        });
        await append(plain.id);
        expect(seen).toHaveLength(0);
        const key = uid("key");
        await append(ch.id, { key });
        await append(ch.id, { key }); // a duplicate queues nothing
        await append(ch.id);
        expect(await Promise.all(seen)).toEqual([1, 2]);
        stop();
        await append(ch.id);
        expect(seen).toHaveLength(2);
      });

      it("complete ends a delivery; fail records the error and retries at retryAt, or gives up", async () => {
        await drain();
        const ch = await channel();
        const hook = await webhook(ch.id);
        await appendMany(ch.id, 3);
        const now = soon();
        const [d1, d2, d3] = await claim(now);

        const deliveredAt = new Date();
        await store().completeWebhookDelivery(d1!.id, deliveredAt);

        const retryAt = new Date(now.getTime() + 5_000);
        expect(
          await store().failWebhookDelivery({ id: d2!.id, attempts: 1, error: "HTTP 500", retryAt }),
        ).toBe(true);
        expect(
          await store().failWebhookDelivery({ id: d3!.id, attempts: 1, error: "gave up", retryAt: null }),
        ).toBe(true);

        expect(await claim(new Date(now.getTime() + 4_000))).toEqual([]);
        const retried = await claim(new Date(now.getTime() + 5_000));
        expect(retried.map((d) => [d.id, d.attempts])).toEqual([[d2!.id, 2]]);
        // A late outcome of the first attempt does not overwrite the second's lease.
        expect(
          await store().failWebhookDelivery({ id: d2!.id, attempts: 1, error: "late", retryAt: null }),
        ).toBe(false);
        // A delivered row stays delivered.
        expect(
          await store().failWebhookDelivery({ id: d1!.id, attempts: 1, error: "late", retryAt: now }),
        ).toBe(false);
        expect(await claim(FAR())).toEqual(retried.map((d) => ({ ...d, attempts: 3 })));

        const rows = new Map((await store().listWebhookOutbox(hook.id)).map((r) => [r.id, r]));
        expect(rows.get(d1!.id)).toMatchObject({ nextAttemptAt: null, lastError: null, attempts: 1 });
        expect(rows.get(d1!.id)?.deliveredAt?.getTime()).toBe(deliveredAt.getTime());
        expect(rows.get(d3!.id)).toMatchObject({
          nextAttemptAt: null,
          lastError: "gave up",
          deliveredAt: null,
        });
        expect(rows.get(d2!.id)).toMatchObject({ attempts: 3, lastError: "HTTP 500", deliveredAt: null });
      });

      it("removing a webhook drops its pending deliveries; other webhooks keep theirs", async () => {
        await drain();
        const ch = await channel();
        const [gone, kept] = [await webhook(ch.id), await webhook(ch.id)];
        await appendMany(ch.id, 2);
        expect(await store().removeWebhook(ch.id, gone.id)).toBe(true);
        expect(await store().listWebhookOutbox(gone.id)).toEqual([]);
        const due = await claim();
        expect(due.map((d) => [d.webhookId, d.message.seq])).toEqual([
          [kept.id, 1],
          [kept.id, 2],
        ]);
      });

      it("deliveries live as long as their message: expiry and channel deletion take them along", async () => {
        await drain();
        const ch = await channel();
        const hook = await webhook(ch.id);
        await append(ch.id, { expiresAt: anHourAgo() });
        await append(ch.id);
        expect(await store().listWebhookOutbox(hook.id)).toHaveLength(2);
        await store().deleteExpiredMessages(new Date());
        expect((await store().listWebhookOutbox(hook.id)).map((r) => r.seq)).toEqual([2]);

        const idle = await channel();
        const idleHook = await webhook(idle.id);
        await append(idle.id);
        await store().deleteInactiveChannels(new Date(Date.now() + 60_000));
        expect(await store().listWebhooks(idle.id)).toEqual([]);
        expect(await store().listWebhookOutbox(idleHook.id)).toEqual([]);
        expect(await claim(FAR())).toEqual([]);
      });
    });

    describe("counts", () => {
      it("counts channels, active subscriptions and unexpired messages", async () => {
        const before = await store().counts(new Date());
        const a = await channel();
        const b = await channel();
        const [u1, u2] = [user(), user()];
        await subscribe(a.id, u1);
        await subscribe(a.id, u2);
        await subscribe(b.id, u1);
        await store().unsubscribe(b.id, u1);
        await appendMany(a.id, 2);
        await append(b.id);
        await append(b.id, { expiresAt: anHourAgo() });

        const after = await store().counts(new Date());
        expect(after).toEqual({
          channels: before.channels + 2,
          activeSubscriptions: before.activeSubscriptions + 2,
          queuedMessages: before.queuedMessages + 3,
        });
        expect(typeof after.channels).toBe("number");
        // The queue-depth gauge's own count: the same number, without the other two.
        expect(await store().queuedMessages(new Date())).toBe(after.queuedMessages);
      });
    });
  });
}
