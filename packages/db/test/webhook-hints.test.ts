import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelStore } from "../src/channel-store.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { onEachDatabase, type SuiteDatabase } from "./each-database.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";

/**
 * DrizzleChannelStore keeps a per-instance hint of which channels have webhooks so appends to other
 * channels skip the outbox statement. Two stores on one database stand for two server instances: the
 * hint of one is stale after the other adds or removes a webhook, and no delivery may be lost for it.
 */
onEachDatabase("webhook hints across instances", (name, open) => {
  describe(`webhook hints across instances: ${name}`, () => {
    let opened: SuiteDatabase | undefined;
    let a: ChannelStore;
    let b: ChannelStore;

    beforeAll(async () => {
      opened = await open();
      a = new DrizzleChannelStores(opened.handle.db).as(SERVICE_ACTOR);
      b = new DrizzleChannelStores(opened.handle.db).as(SERVICE_ACTOR);
    });
    afterAll(async () => {
      await opened?.close();
    });

    const append = (store: ChannelStore, channelId: string) => store.appendMessage(appendInput(channelId));

    it("a webhook added on another instance gets the next message; a removed one gets nothing more", async () => {
      const channel = await coupleDashboard(a);
      await append(a, channel.id); // a: "no webhooks" (plain statement)
      const hook = await b.addWebhook({
        channelId: channel.id,
        url: "https://x.example",
        secret: "s",
        createdBy: "u",
      });
      expect((await append(a, channel.id)).message.seq).toBe(2); // a's hint is stale: still queued
      expect((await append(a, channel.id)).message.seq).toBe(3);
      expect((await a.findChannel(channel.name))?.webhookCount).toBe(1);
      expect((await a.listWebhookOutbox(hook.id)).map((r) => r.seq)).toEqual([2, 3]);

      expect(await b.removeWebhook(channel.id, hook.id)).toBe(true);
      const second = await b.addWebhook({
        channelId: channel.id,
        url: "https://y.example",
        secret: "s",
        createdBy: "u",
      });
      await b.removeWebhook(channel.id, second.id);
      expect((await a.findChannel(channel.name))?.webhookCount).toBe(0);
      expect((await append(a, channel.id)).message.seq).toBe(4); // a still believes in webhooks: fine
      expect((await append(b, channel.id)).message.seq).toBe(5);

      const third = await a.addWebhook({
        channelId: channel.id,
        url: "https://z.example",
        secret: "s",
        createdBy: "u",
      });
      expect((await append(b, channel.id)).message.seq).toBe(6);
      expect((await a.listWebhookOutbox(third.id)).map((r) => r.seq)).toEqual([6]);
      expect(await a.listWebhookOutbox(hook.id)).toEqual([]); // removed: its rows went with it
    });

    it("appends to a channel that does not exist still fail", async () => {
      await expect(append(a, "00000000-0000-4000-8000-000000000000")).rejects.toThrow(/does not exist/);
    });
  });
});
