import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelUnavailableError } from "../src/channel-store.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR, type StoreActor } from "../src/store-actor.ts";
import { onEachDatabase, type SuiteDatabase } from "./each-database.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";

/**
 * Appends made in one turn, on one channel or many, and those that arrive while their channel's commit is
 * in flight, are committed together. Callers must not
 * be able to tell: every append resolves with its own row (or its own error), seqs stay gap-free and in
 * arrival order, idempotency keys still dedupe, and webhooks still get every message.
 */
onEachDatabase("group commit", (name, open) => {
  describe(`group commit: ${name}`, () => {
    let opened: SuiteDatabase;
    let stores: DrizzleChannelStores;
    const couple = (sub: string, coupleId: string): StoreActor => ({
      kind: "user",
      sub,
      role: "couple",
      suppliers: [],
      couples: [coupleId],
      venues: [],
    });

    beforeAll(async () => {
      opened = await open();
      stores = new DrizzleChannelStores(opened.handle.db);
    });
    afterAll(async () => {
      await opened?.close();
    });

    async function dashboard() {
      const coupleId = `c-${randomUUID().slice(0, 8)}`;
      return { channel: await coupleDashboard(stores.as(SERVICE_ACTOR), { coupleId }), coupleId };
    }

    const input = (channelId: string, senderId: string, n: number, key: string | null = null) =>
      appendInput(channelId, { event: "timeline.updated", payload: { n }, senderId, idempotencyKey: key });

    const stored = async (channelId: string) =>
      (await stores.as(SERVICE_ACTOR).readMessages(channelId, 0, 1_000, new Date())).map((row) => ({
        seq: row.seq,
        n: (row.payload as { n: number }).n,
      }));

    it("concurrent appends commit in batches, gap-free and in arrival order", async () => {
      const { channel, coupleId } = await dashboard();
      const store = stores.as(couple("amy", coupleId));
      const before = { ...stores.appendStats };
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, n) => store.appendMessage(input(channel.id, "amy", n))),
      );
      expect(results.map((r) => r.message.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(results.every((r) => !r.duplicate)).toBe(true);
      expect(await stored(channel.id)).toEqual(Array.from({ length: 40 }, (_, i) => ({ seq: i + 1, n: i })));
      // Made in the same turn of the event loop: they start together, one commit for all 40.
      expect(stores.appendStats.batchedAppends - before.batchedAppends).toBe(40);
      expect(stores.appendStats.batches - before.batches).toBe(1);
      expect(stores.appendStats.fallbacks).toBe(before.fallbacks);
    });

    it("appends to many channels made in one turn commit in one transaction, each channel gap-free", async () => {
      const weddings = await Promise.all(Array.from({ length: 8 }, () => dashboard()));
      const before = { ...stores.appendStats };
      const results = await Promise.all(
        weddings.flatMap(({ channel, coupleId }) =>
          Array.from({ length: 3 }, (_, n) =>
            stores.as(couple("amy", coupleId)).appendMessage(input(channel.id, "amy", n)),
          ),
        ),
      );
      expect(results.map((r) => r.message.seq)).toEqual(weddings.flatMap(() => [1, 2, 3]));
      for (const [w, { channel }] of weddings.entries()) {
        expect(results.slice(w * 3, w * 3 + 3).every((r) => r.message.channelId === channel.id)).toBe(true);
        expect(await stored(channel.id)).toEqual([0, 1, 2].map((n) => ({ seq: n + 1, n })));
      }
      expect(stores.appendStats.batches - before.batches).toBe(1);
      expect(stores.appendStats.batchedAppends - before.batchedAppends).toBe(24);
      expect(stores.appendStats.fallbacks).toBe(before.fallbacks);
    });

    it("a sender refused on one channel fails alone; the other channels of its batch are stored", async () => {
      const [mine, theirs] = [await dashboard(), await dashboard()];
      const amy = stores.as(couple("amy", mine.coupleId));
      const bob = stores.as(couple("bob", theirs.coupleId));
      const before = { ...stores.appendStats };
      const outcomes = await Promise.allSettled([
        amy.appendMessage(input(mine.channel.id, "amy", 0)),
        bob.appendMessage(input(theirs.channel.id, "bob", 1)),
        amy.appendMessage(input(theirs.channel.id, "amy", 2)),
        bob.appendMessage(input(theirs.channel.id, "bob", 3)),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(ChannelUnavailableError);
      expect(await stored(mine.channel.id)).toEqual([{ seq: 1, n: 0 }]);
      expect(await stored(theirs.channel.id)).toEqual([
        { seq: 1, n: 1 },
        { seq: 2, n: 3 },
      ]);
      expect(stores.appendStats.fallbacks).toBe(before.fallbacks + 1);
    });

    it("a channel with webhooks goes alone; the other channels of the turn still commit together", async () => {
      const [hooked, plain, other] = [await dashboard(), await dashboard(), await dashboard()];
      const owner = stores.as(couple("amy", hooked.coupleId));
      const hook = await owner.addWebhook({
        channelId: hooked.channel.id,
        url: "https://hooks.example/in",
        secret: "s",
        createdBy: "amy",
      });
      const before = { ...stores.appendStats };
      await Promise.all([
        owner.appendMessage(input(hooked.channel.id, "amy", 0)),
        stores.as(couple("amy", plain.coupleId)).appendMessage(input(plain.channel.id, "amy", 1)),
        stores.as(couple("amy", other.coupleId)).appendMessage(input(other.channel.id, "amy", 2)),
        owner.appendMessage(input(hooked.channel.id, "amy", 3)),
      ]);
      const outbox = await stores.as(SERVICE_ACTOR).listWebhookOutbox(hook.id);
      expect(outbox.map((row) => row.seq).sort((a, b) => a - b)).toEqual([1, 2]);
      expect(await stored(hooked.channel.id)).toEqual([
        { seq: 1, n: 0 },
        { seq: 2, n: 3 },
      ]);
      expect(stores.appendStats.batches - before.batches).toBe(1);
      expect(stores.appendStats.batchedAppends - before.batchedAppends).toBe(2);
    });

    it("idempotency keys dedupe inside a batch and against what is stored", async () => {
      const { channel, coupleId } = await dashboard();
      const store = stores.as(couple("amy", coupleId));
      const first = await store.appendMessage(input(channel.id, "amy", 0, "k0"));
      const results = await Promise.all([
        store.appendMessage(input(channel.id, "amy", 1)),
        store.appendMessage(input(channel.id, "amy", 2, "k1")),
        store.appendMessage(input(channel.id, "amy", 3, "k1")),
        store.appendMessage(input(channel.id, "amy", 4, "k0")),
        store.appendMessage(input(channel.id, "amy", 5, "k2")),
      ]);
      expect(results.map((r) => [r.message.seq, r.duplicate])).toEqual([
        [2, false],
        [3, false],
        [3, true],
        [first.message.seq, true],
        [4, false],
      ]);
      expect(await stored(channel.id)).toEqual([
        { seq: 1, n: 0 },
        { seq: 2, n: 1 },
        { seq: 3, n: 2 },
        { seq: 4, n: 5 },
      ]);
    });

    it("an idempotency key belongs to its channel, in a batch and against what is stored", async () => {
      const [first, second] = [await dashboard(), await dashboard()];
      const amy = stores.as(couple("amy", first.coupleId));
      const bea = stores.as(couple("amy", second.coupleId));
      await amy.appendMessage(input(first.channel.id, "amy", 0, "stored"));
      const results = await Promise.all([
        amy.appendMessage(input(first.channel.id, "amy", 1, "both")),
        bea.appendMessage(input(second.channel.id, "amy", 2, "both")),
        bea.appendMessage(input(second.channel.id, "amy", 3, "stored")),
        amy.appendMessage(input(first.channel.id, "amy", 4, "stored")),
      ]);
      expect(results.map((r) => [r.message.channelId, r.message.seq, r.duplicate])).toEqual([
        [first.channel.id, 2, false],
        [second.channel.id, 1, false],
        [second.channel.id, 2, false],
        [first.channel.id, 1, true],
      ]);
      expect(await stored(second.channel.id)).toEqual([
        { seq: 1, n: 2 },
        { seq: 2, n: 3 },
      ]);
    });

    it("a sender the database refuses fails alone; the rest of its batch is stored", async () => {
      const { channel, coupleId } = await dashboard();
      const member = stores.as(couple("amy", coupleId));
      const outsider = stores.as(couple("eve", "another-wedding"));
      const before = { ...stores.appendStats };
      const first = member.appendMessage(input(channel.id, "amy", 0));
      const queued = [
        member.appendMessage(input(channel.id, "amy", 1)),
        outsider.appendMessage(input(channel.id, "eve", 2)),
        member.appendMessage(input(channel.id, "amy", 3)),
      ];
      const outcomes = await Promise.allSettled([first, ...queued]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(ChannelUnavailableError);
      expect(await stored(channel.id)).toEqual([
        { seq: 1, n: 0 },
        { seq: 2, n: 1 },
        { seq: 3, n: 3 },
      ]);
      expect(stores.appendStats.fallbacks).toBe(before.fallbacks + 1);
    });

    it("every message of a channel with webhooks is queued for them", async () => {
      const { channel, coupleId } = await dashboard();
      const owner = stores.as(couple("amy", coupleId));
      const hook = await owner.addWebhook({
        channelId: channel.id,
        url: "https://hooks.example/in",
        secret: "s",
        createdBy: "amy",
      });
      await Promise.all(
        Array.from({ length: 12 }, (_, n) => owner.appendMessage(input(channel.id, "amy", n))),
      );
      const outbox = await stores.as(SERVICE_ACTOR).listWebhookOutbox(hook.id);
      expect(outbox.map((row) => row.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
    });
  });
});
