import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChannelStore, type ChannelStores, ChannelUnavailableError } from "../src/channel-store.ts";
import type { Database } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import type { ChannelRow } from "../src/schema.ts";
import { SERVICE_ACTOR, type StoreActor } from "../src/store-actor.ts";
import { onEachDatabase, type SuiteDatabase } from "./each-database.ts";
import { appendInput } from "./fixtures.ts";

/** A first subscribe of `userId` to the channel, as channel.subscribe asks for it. */
const subscription = (channelId: string, userId: string) => ({
  channelId,
  userId,
  fromSeq: null,
  maxActive: 10,
  missedLimit: 10,
  now: new Date(),
});

/**
 * Wedding A (couple ca) and wedding B (couple cb) share one database. Whatever the server's code does, the
 * database itself must keep B's channels, subscriptions and messages away from A: the tests below speak
 * SQL directly as the server's role with A's settings, and through the store as A.
 */
onEachDatabase("row level security", (name, open) => {
  describe(`row level security: ${name}`, () => {
    let opened: SuiteDatabase;
    let stores: ChannelStores;
    let service: ChannelStore;
    const tag = randomUUID().slice(0, 8);
    const ca = `ca-${tag}`;
    const cb = `cb-${tag}`;
    const supplier = `sup-${tag}`;
    const coupleA: StoreActor = {
      kind: "user",
      sub: `alice-${tag}`,
      role: "couple",
      suppliers: [],
      couples: [ca],
      venues: [],
    };
    const coupleB: StoreActor = { ...coupleA, sub: `bob-${tag}`, couples: [cb] };
    const admin: StoreActor = {
      kind: "user",
      sub: `root-${tag}`,
      role: "admin",
      suppliers: [],
      couples: [],
      venues: [],
    };
    let aDashboard: ChannelRow;
    let bChannels: ChannelRow[];

    async function create(store: ChannelStore, name: string, createdBy: string): Promise<ChannelRow> {
      const [scope = "", entity = "", ...rest] = name.split(":");
      const { channel } = await store.upsertChannel({
        name,
        type: "shared",
        scope,
        entity,
        entityId: rest.join(":"),
        createdBy,
        metadata: {},
      });
      if (!channel) throw new Error(`${name} is not visible to its creator`);
      return channel;
    }

    const message = (channelId: string, senderId: string) =>
      appendInput(channelId, { event: "timeline.updated", payload: { ceremony: "15:00" }, senderId });

    beforeAll(async () => {
      opened = await open();
      stores = new DrizzleChannelStores(opened.handle.db);
      service = stores.as(SERVICE_ACTOR);
      const a = stores.as(coupleA);
      const b = stores.as(coupleB);
      aDashboard = await create(a, `couple:dashboard:${ca}`, `alice-${tag}`);
      await a.appendMessage(message(aDashboard.id, `alice-${tag}`));
      await a.subscribe(subscription(aDashboard.id, `alice-${tag}`));
      bChannels = [
        await create(b, `couple:dashboard:${cb}`, `bob-${tag}`),
        await create(b, `collaboration:${supplier}:${cb}`, `bob-${tag}`),
        await create(b, `journey:milestone:${cb}:venue-booked`, `bob-${tag}`),
      ];
      for (const channel of bChannels) {
        await b.appendMessage(message(channel.id, `bob-${tag}`));
        await b.subscribe(subscription(channel.id, `bob-${tag}`));
      }
    });

    afterAll(async () => {
      await opened?.close();
    });

    /** Raw SQL as the server's database role with the given settings, committed: what it could change, it did. */
    async function asRole<T>(
      settings: { role?: string; userId?: string; couples?: string },
      work: (run: (query: string) => Promise<Record<string, unknown>[]>) => Promise<T>,
    ): Promise<T> {
      const db: Database = opened.handle.db;
      return db.transaction(async (tx) => {
        await tx.execute(sql`select set_config('role', 'wedsync_app', true),
          set_config('app.role', ${settings.role ?? ""}, true),
          set_config('app.user_id', ${settings.userId ?? ""}, true),
          set_config('app.couples', ${settings.couples ?? ""}, true)`);
        return work(async (query) => {
          const out = await tx.execute(sql.raw(query));
          return Array.isArray(out) ? out : ((out as { rows: Record<string, unknown>[] }).rows ?? []);
        });
      });
    }

    const alice = {
      role: "couple",
      userId: `alice-${tag}`,
      couples: `,${ca},`,
    };
    const bIds = () => bChannels.map((c) => `'${c.id}'`).join(",");

    /** The SQLSTATE of what `work` threw (42501: insufficient privilege / row level security). */
    async function codeOf(work: () => Promise<unknown>): Promise<string | undefined> {
      try {
        await work();
      } catch (error) {
        for (let e: unknown = error; e && typeof e === "object"; e = (e as { cause?: unknown }).cause) {
          const code = (e as { code?: unknown }).code;
          if (typeof code === "string") return code;
        }
        throw error;
      }
      return undefined;
    }

    it("as wedding A's user, SQL sees none of wedding B's channels, subscriptions or messages", async () => {
      const seen = await asRole(alice, async (run) => ({
        current: await run("select current_user as role"),
        channels: await run("select channel_name from websocket_channels"),
        bChannels: await run(`select id from websocket_channels where id in (${bIds()})`),
        subscriptions: await run(`select user_id from channel_subscriptions where channel_id in (${bIds()})`),
        messages: await run(`select seq from channel_message_queue where channel_id in (${bIds()})`),
        own: await run(`select seq from channel_message_queue where channel_id = '${aDashboard.id}'`),
      }));
      expect(seen.current).toEqual([{ role: "wedsync_app" }]);
      expect(seen.channels.map((r) => r.channel_name)).toEqual([`couple:dashboard:${ca}`]);
      expect(seen.bChannels).toEqual([]);
      expect(seen.subscriptions).toEqual([]);
      expect(seen.messages).toEqual([]);
      expect(seen.own).toHaveLength(1);
    });

    it("as wedding A's user, SQL cannot write wedding B's rows", async () => {
      const [bDashboard] = bChannels;
      const id = bDashboard?.id;
      const insertMessage = `insert into channel_message_queue (channel_id, seq, event, payload, sender_id, expires_at)
        values ('${id}', 99, 'x', '{}', 'alice-${tag}', now() + interval '1 hour')`;
      expect(await codeOf(() => asRole(alice, (run) => run(insertMessage)))).toBe("42501");
      const subscribe = `insert into channel_subscriptions (channel_id, user_id) values ('${id}', 'alice-${tag}')`;
      expect(await codeOf(() => asRole(alice, (run) => run(subscribe)))).toBe("42501");
      const grant = `insert into channel_grants (channel_id, user_id, granted_by) values ('${id}', 'alice-${tag}', 'alice-${tag}')`;
      expect(await codeOf(() => asRole(alice, (run) => run(grant)))).toBe("42501");
      const changed = await asRole(alice, async (run) => ({
        bumped: await run(
          `update websocket_channels set last_seq = 999 where id in (${bIds()}) returning id`,
        ),
        cursors: await run(
          `update channel_subscriptions set cursor_seq = 999 where channel_id in (${bIds()}) returning id`,
        ),
        deleted: await run(`delete from channel_message_queue returning seq`),
        dropped: await run(`delete from websocket_channels returning id`),
      }));
      expect(changed).toEqual({ bumped: [], cursors: [], deleted: [], dropped: [] });
      // Nothing changed underneath either.
      expect((await service.readMessages(id ?? "", 0, 10, new Date())).map((m) => m.seq)).toEqual([1]);
      expect((await service.listSubscribers(id ?? "")).map((s) => s.cursorSeq)).toEqual([1]);
    });

    it("without settings the role sees nothing, and nobody may rewrite the audit log", async () => {
      await service.writeAudit([{ action: "create", outcome: "ok", instanceId: "test", actorId: "x" }]);
      const seen = await asRole({}, async (run) => ({
        channels: await run("select id from websocket_channels"),
        messages: await run("select seq from channel_message_queue"),
        audit: await run("select id from channel_audit_log"),
      }));
      expect(seen).toEqual({ channels: [], messages: [], audit: [] });
      const rewrite = () =>
        asRole({ role: "service" }, (run) => run("update channel_audit_log set reason = 'x'"));
      expect(await codeOf(rewrite)).toBe("42501");
    });

    it("only the service reads or writes the removals counter behind the queue depth", async () => {
      await service.deleteExpiredMessages(new Date());
      const own = `insert into channel_message_removals (channel_id, removed) values ('${aDashboard.id}', 5)`;
      expect(await codeOf(() => asRole(alice, (run) => run(own)))).toBe("42501");
      const seen = await asRole(alice, async (run) => ({
        rows: await run("select channel_id from channel_message_removals"),
        changed: await run("update channel_message_removals set removed = 0 returning channel_id"),
      }));
      expect(seen).toEqual({ rows: [], changed: [] });
      const counted = await asRole({ role: "service" }, (run) =>
        run(`insert into channel_message_removals (channel_id, removed) values ('${aDashboard.id}', 0)
          on conflict (channel_id) do update set removed = channel_message_removals.removed returning removed`),
      );
      expect(counted).toHaveLength(1);
    });

    it("through the store as A: B's channel is missing, unreadable and unwritable", async () => {
      const a = stores.as(coupleA);
      const [bDashboard] = bChannels;
      const id = bDashboard?.id ?? "";
      expect(await a.findChannel(`couple:dashboard:${cb}`)).toBeUndefined();
      expect(await a.readMessages(id, 0, 10, new Date())).toEqual([]);
      expect(await a.listSubscribers(id)).toEqual([]);
      await expect(a.appendMessage(message(id, `alice-${tag}`))).rejects.toBeInstanceOf(
        ChannelUnavailableError,
      );
      expect(await codeOf(() => a.grant(id, `alice-${tag}`, `alice-${tag}`))).toBe("42501");
      // A's own subscribe to B's channel cannot even see the channel, so it cannot take a cursor there.
      await expect(a.subscribe(subscription(id, `alice-${tag}`))).rejects.toBeInstanceOf(
        ChannelUnavailableError,
      );
      expect(await a.pendingMessages(`bob-${tag}`, 10, new Date())).toEqual([]);
      // Sending as someone else is refused even on A's own channel.
      expect(await codeOf(() => a.appendMessage(message(aDashboard.id, `bob-${tag}`)))).toBe("42501");
    });

    it("a grant opens a channel to its grantee, and revoking closes it again", async () => {
      const b = stores.as(coupleB);
      const a = stores.as(coupleA);
      const [bDashboard] = bChannels;
      const id = bDashboard?.id ?? "";
      expect(await b.grant(id, `alice-${tag}`, `bob-${tag}`)).toBe(true);
      expect((await a.readMessages(id, 0, 10, new Date())).map((m) => m.seq)).toEqual([1]);
      expect((await a.appendMessage(message(id, `alice-${tag}`))).message.seq).toBe(2);
      // A grantee is no owner: it cannot pass the channel on.
      expect(await codeOf(() => a.grant(id, `carol-${tag}`, `alice-${tag}`))).toBe("42501");
      expect(await b.revoke(id, `alice-${tag}`)).toBe(true);
      expect(await a.readMessages(id, 0, 10, new Date())).toEqual([]);
    });

    it("admins see channel metadata and the audit log, never messages", async () => {
      const root = stores.as(admin);
      expect(await root.findChannel(`couple:dashboard:${cb}`)).toMatchObject({ id: bChannels[0]?.id });
      expect(await root.readMessages(bChannels[0]?.id ?? "", 0, 10, new Date())).toEqual([]);
      expect((await root.readAudit({ limit: 1 })).length).toBe(1);
      await expect(root.appendMessage(message(bChannels[0]?.id ?? "", `root-${tag}`))).rejects.toBeInstanceOf(
        ChannelUnavailableError,
      );
    });

    it("a signed webhook publishes to milestones but not to dashboards", async () => {
      const hook = stores.as({ kind: "webhook", senderId: "webhook:inbound" });
      const milestone = bChannels[2];
      const dashboard = bChannels[0];
      expect((await hook.appendMessage(message(milestone?.id ?? "", "webhook:inbound"))).message.seq).toBe(2);
      await expect(
        hook.appendMessage(message(dashboard?.id ?? "", "webhook:inbound")),
      ).rejects.toBeInstanceOf(ChannelUnavailableError);
    });

    it("a grantee's message reaches the channel's webhooks without the grantee seeing them", async () => {
      const b = stores.as(coupleB);
      const a = stores.as(coupleA);
      const collaboration = bChannels[1];
      const id = collaboration?.id ?? "";
      const hook = await b.addWebhook({
        channelId: id,
        url: "https://hooks.example/b",
        secret: "s",
        createdBy: `bob-${tag}`,
      });
      await b.grant(id, `alice-${tag}`, `bob-${tag}`);
      expect(await a.listWebhooks(id)).toEqual([]);
      const { message: stored } = await a.appendMessage(message(id, `alice-${tag}`));
      expect((await service.listWebhookOutbox(hook.id)).map((row) => row.seq)).toEqual([stored.seq]);
      // Queueing deliveries by hand queues nothing unless the caller sent that message: seq 1 was
      // stored (by bob) before the webhook existed, so it has no deliveries for anyone to duplicate.
      const carol = { role: "couple", userId: `carol-${tag}` };
      const queueSeq1 = `select wedsync_queue_webhook_deliveries('${id}', 1)`;
      await asRole(carol, (run) => run(queueSeq1));
      await asRole(alice, (run) => run(queueSeq1));
      expect((await service.listWebhookOutbox(hook.id)).map((row) => row.seq)).toEqual([stored.seq]);
    });
  });
});
