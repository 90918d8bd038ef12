import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Bus } from "../src/bus.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Behaviour every Bus implementation must show; run once per implementation. */
export function busContract(name: string, open: () => Promise<Bus>) {
  describe(`Bus contract: ${name}`, () => {
    let bus: Bus;
    const received: Array<[string, string]> = [];
    const framesOf = (topic: string) => received.filter(([t]) => t === topic).map(([, frame]) => frame);
    const eventually = async (check: () => void, timeoutMs = 2_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          return check();
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(10);
        }
      }
    };

    beforeAll(async () => {
      bus = await open();
      bus.onFrame((topic, frame) => received.push([topic, frame]));
    });
    afterAll(() => bus.close());

    it("delivers frames of a subscribed topic in publish order", async () => {
      await bus.subscribe("t-order");
      for (let i = 0; i < 100; i++) await bus.publish("t-order", `m${i}`);
      await eventually(() =>
        expect(framesOf("t-order")).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`)),
      );
    });

    it("delivers nothing for a topic nobody subscribed to", async () => {
      await bus.subscribe("t-marker");
      await bus.publish("t-unsubscribed", "lost");
      await bus.publish("t-marker", "after");
      await eventually(() => expect(framesOf("t-marker")).toEqual(["after"]));
      expect(framesOf("t-unsubscribed")).toEqual([]);
    });

    it("may reach a topic subscribed to here", async () => {
      await bus.subscribe("t-reach");
      expect(bus.mayReach("t-reach")).toBe(true);
    });

    it("stops delivering after unsubscribe", async () => {
      await bus.subscribe("t-stop");
      await bus.publish("t-stop", "before");
      await eventually(() => expect(framesOf("t-stop")).toEqual(["before"]));
      await bus.unsubscribe("t-stop");
      await bus.subscribe("t-stop-marker");
      await bus.publish("t-stop", "after");
      await bus.publish("t-stop-marker", "marker");
      await eventually(() => expect(framesOf("t-stop-marker")).toEqual(["marker"]));
      expect(framesOf("t-stop")).toEqual(["before"]);
    });

    it("claimOnce: true the first time, false while the mark lasts, true again after it expires", async () => {
      const key = `once-${Math.random()}`;
      expect(await bus.claimOnce(key, 150)).toBe(true);
      expect(await bus.claimOnce(key, 150)).toBe(false);
      expect(await bus.claimOnce(`${key}-other`, 150)).toBe(true);
      await sleep(250);
      expect(await bus.claimOnce(key, 60_000)).toBe(true);
      expect(await bus.claimOnce(key, 60_000)).toBe(false);
    });

    it("claimOnce: of concurrent claims of one key exactly one wins", async () => {
      const key = `once-race-${Math.random()}`;
      const results = await Promise.all(Array.from({ length: 20 }, () => bus.claimOnce(key, 60_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it("rate-limits per key: the point after the last is refused with a retry delay", async () => {
      const limiter = bus.rateLimiter({ name: `rl-${Math.random()}`, points: 5, durationSeconds: 60 });
      const decisions = [];
      for (let i = 0; i < 6; i++) decisions.push(await limiter.consume("channel-a"));
      expect(decisions.slice(0, 5).every((d) => d.allowed)).toBe(true);
      const refused = decisions[5]!;
      expect(refused.allowed).toBe(false);
      expect(refused.allowed === false && refused.retryAfterMs).toBeGreaterThan(0);
      expect((await limiter.consume("channel-b")).allowed).toBe(true);
    });

    describe("presence", () => {
      const entry = (clientId: string, userId = "u1") => ({
        clientId,
        userId,
        instanceId: "i1",
        joinedAt: 1,
      });
      const channel = () => `presence-${Math.random()}`;
      /** One entry of `userId` in `ch`, live for `ttlMs`. */
      const upsert = (ch: string, clientId: string, userId: string, ttlMs: number) =>
        bus.presence.upsert([{ channelId: ch, entry: entry(clientId, userId) }], ttlMs);
      /** Joins one entry of `userId` to `ch`; true when it is the user's join. */
      const join = (ch: string, clientId: string, userId: string, ttlMs = 10_000) =>
        bus.presence.join(ch, entry(clientId, userId), ttlMs);

      it("lists live entries and forgets ones that left", async () => {
        const ch = channel();
        await bus.presence.upsert(
          [
            { channelId: ch, entry: entry("a", "u1") },
            { channelId: ch, entry: entry("b", "u2") },
          ],
          10_000,
        );
        expect((await bus.presence.list(ch)).map((e) => e.clientId).sort()).toEqual(["a", "b"]);
        await bus.presence.leave(ch, "a");
        expect(await bus.presence.list(ch)).toEqual([entry("b", "u2")]);
      });

      it("one upsert of several channels and users keeps each user's devices apart", async () => {
        const [one, two] = [channel(), channel()];
        await bus.presence.upsert(
          [
            { channelId: one, entry: entry("phone", "u1") },
            { channelId: two, entry: entry("elsewhere", "u1") },
            { channelId: one, entry: entry("laptop", "u1") },
            { channelId: one, entry: entry("other", "u2") },
          ],
          10_000,
        );
        expect((await bus.presence.list(one)).map((e) => e.clientId).sort()).toEqual([
          "laptop",
          "other",
          "phone",
        ]);
        expect(await bus.presence.list(two)).toEqual([entry("elsewhere", "u1")]);
        // u1 is still on the laptop; then gone from `one`, still in `two`.
        expect(await bus.presence.leave(one, "phone")).toBe(false);
        expect(await bus.presence.leave(one, "laptop")).toBe(true);
        expect(await bus.presence.userOnline(two, "u1")).toBe(true);
        expect(await bus.presence.leave(one, "other")).toBe(true);
      });

      it("expires entries that are not refreshed, and a sweep reports each expiry once", async () => {
        const ch = channel();
        await upsert(ch, "gone", "u1", 50);
        await upsert(ch, "kept", "u1", 10_000);
        await sleep(120);
        expect((await bus.presence.list(ch)).map((e) => e.clientId)).toEqual(["kept"]);
        expect(await bus.presence.sweep(ch)).toEqual([entry("gone")]);
        expect(await bus.presence.sweep(ch)).toEqual([]);
      });

      it("a refresh keeps an entry alive past its first TTL", async () => {
        const ch = channel();
        await upsert(ch, "c", "u1", 100);
        await sleep(60);
        await upsert(ch, "c", "u1", 100);
        await sleep(60);
        expect((await bus.presence.list(ch)).map((e) => e.clientId)).toEqual(["c"]);
      });

      it("join: true for a user's first entry, false for their second device, per user and channel", async () => {
        const ch = channel();
        expect(await join(ch, "phone", "u1")).toBe(true);
        expect(await join(ch, "laptop", "u1")).toBe(false);
        expect(await join(ch, "other", "u2")).toBe(true);
        expect(await join(channel(), "elsewhere", "u1")).toBe(true);
        expect((await bus.presence.list(ch)).map((e) => e.clientId).sort()).toEqual([
          "laptop",
          "other",
          "phone",
        ]);
      });

      it("join: true again once the user's only entry expired, before and after a sweep", async () => {
        const ch = channel();
        expect(await join(ch, "gone", "u1", 50)).toBe(true);
        expect(await join(ch, "kept", "u2")).toBe(true);
        await sleep(120);
        expect(await join(ch, "gone", "u1", 50)).toBe(true);
        await sleep(120);
        expect(await bus.presence.sweep(ch)).toEqual([entry("gone", "u1")]);
        expect(await join(ch, "back", "u1")).toBe(true);
      });

      it("join: a re-join refreshes the entry, and the entry's own earlier copy does not count", async () => {
        const ch = channel();
        await join(ch, "other", "u2");
        expect(await join(ch, "phone", "u1")).toBe(true);
        expect(await join(ch, "laptop", "u1", 50)).toBe(false);
        expect(await join(ch, "laptop", "u1")).toBe(false);
        expect(await bus.presence.leave(ch, "phone")).toBe(false);
        expect(await join(ch, "laptop", "u1")).toBe(true);
        await sleep(120);
        expect((await bus.presence.list(ch)).map((e) => e.clientId).sort()).toEqual(["laptop", "other"]);
        expect(await bus.presence.leave(ch, "laptop")).toBe(true);
      });

      it("leave: false while another of the user's entries is live, true for the last, false if unknown", async () => {
        const ch = channel();
        await join(ch, "phone", "u1");
        await join(ch, "laptop", "u1");
        await join(ch, "other", "u2");
        expect(await bus.presence.leave(ch, "phone")).toBe(false);
        expect(await bus.presence.leave(ch, "laptop")).toBe(true);
        expect(await bus.presence.leave(ch, "laptop")).toBe(false);
        expect(await bus.presence.leave(ch, "never")).toBe(false);
        expect(await bus.presence.leave(channel(), "other")).toBe(false);
        expect((await bus.presence.list(ch)).map((e) => e.clientId)).toEqual(["other"]);
        expect(await bus.presence.leave(ch, "other")).toBe(true);
      });

      it("leave: true when the user's other entry has expired", async () => {
        const ch = channel();
        await join(ch, "gone", "u1", 50);
        await join(ch, "kept", "u1");
        await sleep(120);
        expect(await bus.presence.leave(ch, "kept")).toBe(true);
      });

      it("of concurrent joins of one user exactly one is the join, and of concurrent leaves one the leave", async () => {
        for (let round = 0; round < 20; round++) {
          const ch = channel();
          const joins = await Promise.all([join(ch, "phone", "u1"), join(ch, "laptop", "u1")]);
          expect(joins.filter(Boolean)).toHaveLength(1);
          const leaves = await Promise.all([
            bus.presence.leave(ch, "phone"),
            bus.presence.leave(ch, "laptop"),
          ]);
          expect(leaves.filter(Boolean)).toHaveLength(1);
          expect(await bus.presence.list(ch)).toEqual([]);
        }
      });

      it("userOnline: false for an unknown channel or user, true once the user has an entry", async () => {
        const ch = channel();
        const user = `solo-${Math.random()}`;
        expect(await bus.presence.userOnline(ch, user)).toBe(false);
        await upsert(ch, "a", user, 10_000);
        expect(await bus.presence.userOnline(ch, user)).toBe(true);
        expect(await bus.presence.userOnline(ch, "u2")).toBe(false);
        expect(await bus.presence.userOnline(channel(), user)).toBe(false);
        await bus.presence.leave(ch, "a");
        expect(await bus.presence.userOnline(ch, user)).toBe(false);
      });

      it("userOnline: false once the user's only entry expired, before and after a sweep", async () => {
        const ch = channel();
        await upsert(ch, "gone", "u1", 50);
        await upsert(ch, "kept", "u2", 10_000);
        await sleep(120);
        expect(await bus.presence.userOnline(ch, "u1")).toBe(false);
        expect(await bus.presence.sweep(ch)).toEqual([entry("gone", "u1")]);
        expect(await bus.presence.userOnline(ch, "u1")).toBe(false);
        expect(await bus.presence.userOnline(ch, "u2")).toBe(true);
      });
    });

    it("keeps topics apart and frames intact", async () => {
      const frame = JSON.stringify({ text: "ünïcödé 🎉", nested: { a: [1, 2] } });
      await bus.subscribe("t-a");
      await bus.subscribe("t-b");
      await bus.publish("t-a", frame);
      await bus.publish("t-b", "b");
      await eventually(() => {
        expect(framesOf("t-a")).toEqual([frame]);
        expect(framesOf("t-b")).toEqual(["b"]);
      });
    });
  });
}
