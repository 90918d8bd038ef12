import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  codeOf,
  events,
  post,
  startTestServer,
  supplierDashboard,
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

describe("channel lifecycle", () => {
  it("a channel removed by cleanup is NOT_FOUND for its members, and can be created again as a new epoch", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("m"), role: "supplier", suppliers: [s] });
    const create = () =>
      member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s });
    const channelName = (await create()).name;
    const first = await member.trpc.channel.broadcast.mutate({
      channelName,
      event: "message.posted",
      payload: { text: "before cleanup" },
    });

    // Everything idle and unsubscribed goes, as if the idle period had passed.
    const removed = await server.instance.services.manager.cleanupInactiveChannels(
      new Date(Date.now() + 1e12),
    );
    expect(removed).toBeGreaterThanOrEqual(1);

    const post = () =>
      member.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: "after" },
      });
    expect(await codeOf(member.trpc.channel.subscribe.mutate({ channelName }))).toBe("NOT_FOUND");
    expect(await codeOf(post())).toBe("NOT_FOUND");

    const again = await create();
    expect(again.id).not.toBe(first.id.split(":")[0]);
    expect((await post()).seq).toBe(1);

    // A client resuming from the old epoch is told to refetch, then gets the new epoch.
    const stream = events(member, channelName, first.id);
    await stream.until(2);
    expect(stream.items[0]?.data).toMatchObject({ type: "reset", reason: "unknown" });
    expect(stream.messages().map((m) => m.seq)).toEqual([1]);
  });

  // The instance keeps channel rows by name so that subscribing needs no read as each user. A row
  // it kept can outlive its channel: cleanup deletes it, and another instance may create the name
  // again under a new id. Subscribers must never be left listening to the dead id.
  describe("a subscribe after the channel this instance knows was deleted", () => {
    const setUp = async () => {
      const s = uid("s");
      const member = server.client({ sub: uid("m"), role: "supplier", suppliers: [s] });
      const { name: channelName, id } = await member.trpc.channel.create.mutate({
        scope: "supplier",
        entity: "dashboard",
        entityId: s,
      });
      // Known to this instance: a live stream was opened on it.
      const first = events(member, channelName);
      await first.started;
      first.unsubscribe();
      const removed = await server.instance.services.manager.cleanupInactiveChannels(
        new Date(Date.now() + 1e12),
      );
      expect(removed).toBeGreaterThanOrEqual(1);
      return { s, member, channelName, id };
    };

    /** As another instance would: straight in the shared database, unseen by this one. */
    const createdAgainElsewhere = async (s: string, channelName: string) => {
      const { channel } = await server.instance.services.serviceStore.upsertChannel({
        name: channelName,
        type: "private",
        scope: "supplier",
        entity: "dashboard",
        entityId: s,
        createdBy: "elsewhere",
        metadata: {},
      });
      return channel;
    };

    it("is NOT_FOUND, and so are the streams that were listening to it", async () => {
      const { owner: member, channelName } = await supplierDashboard(server);
      // This instance listens to the channel and has just read its head: a new stream would
      // start from what it knows, were it not told the channel went.
      const listening = events(member, channelName);
      await listening.started;
      await server.instance.services.manager.cleanupInactiveChannels(new Date(Date.now() + 1e12));

      // Nothing will be published to the deleted id again: its streams are told, not left silent.
      expect(await listening.failure()).toBe("NOT_FOUND");
      expect((listening.error as Error).message).toBe(`channel ${channelName} was deleted`);
      expect(await events(member, channelName).failure()).toBe("NOT_FOUND");
    });

    it("is NOT_FOUND when nothing has the name now", async () => {
      const { member, channelName } = await setUp();
      expect(await events(member, channelName).failure()).toBe("NOT_FOUND");
    });

    it("by channel.subscribe is NOT_FOUND when nothing has the name now, and takes no cursor", async () => {
      const { member, channelName } = await setUp();
      expect(await codeOf(member.trpc.channel.subscribe.mutate({ channelName }))).toBe("NOT_FOUND");
      expect(await member.trpc.channel.list.query()).toEqual([]);
    });

    it("by channel.subscribe takes its cursor on the channel created again elsewhere", async () => {
      const { s, member, channelName, id } = await setUp();
      const again = await createdAgainElsewhere(s, channelName);
      expect(again?.id).not.toBe(id);
      const { subscription } = await member.trpc.channel.subscribe.mutate({ channelName });
      expect(subscription.channelId).toBe(again?.id);
      expect(subscription.resumeFrom).toBe(`${again?.id}:0`);
    });

    it("gets the live messages of the channel created again elsewhere", async () => {
      const { s, member, channelName, id } = await setUp();
      const again = await createdAgainElsewhere(s, channelName);
      expect(again?.id).not.toBe(id);

      const stream = events(member, channelName);
      await stream.started;
      await post(member, channelName, "new epoch");
      await stream.until(1);
      expect(stream.messages().map(text)).toEqual(["new epoch"]);
    });

    it("lets a grantee of the channel created again elsewhere publish to it", async () => {
      const { s, member, channelName } = await setUp();
      const again = await createdAgainElsewhere(s, channelName);
      const guestId = uid("planner");
      const guest = server.client({ sub: guestId, role: "supplier", suppliers: [uid("other")] });
      await member.trpc.channel.grant.mutate({ channelName, userId: guestId });

      // Judged on the stale row this instance still caches, the grant (on the new id) would not count.
      const sent = await post(guest, channelName, "from the guest");
      expect(sent.id.startsWith(`${again!.id}:`)).toBe(true);
    });
  });
});
