import { beforeAll, describe, expect, it } from "vitest";
import type { ChannelStore } from "../src/channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";
import { postgresUrlForTests } from "./fresh-postgres.ts";
import type { RowLocks } from "./row-locks.ts";
import { twoInstances } from "./two-instances.ts";

const adminUrl = postgresUrlForTests("webhook race: postgres");

/**
 * Appends and webhook changes both serialize on the channel row; RowLocks orders them deterministically.
 * Two stores on separate pools stand for two server instances.
 */
describe.runIf(adminUrl)("webhook changes racing appends (postgres)", () => {
  const instances = twoInstances(adminUrl!, "channels_webhook_race");
  let a: ChannelStore;
  let b: ChannelStore;
  let locks: RowLocks;

  beforeAll(() => {
    a = instances.a.as(SERVICE_ACTOR);
    b = instances.b.as(SERVICE_ACTOR);
    locks = instances.locks;
  });

  const newChannel = () => coupleDashboard(a);
  const append = (store: ChannelStore, channelId: string) => store.appendMessage(appendInput(channelId));
  const addWebhook = (store: ChannelStore, channelId: string, url = "https://hook.example/in") =>
    store.addWebhook({ channelId, url, secret: "s", createdBy: "u" });
  const queuedSeqs = async (webhookId: string) =>
    (await a.listWebhookOutbox(webhookId)).map((r) => r.seq).sort((x, y) => x - y);

  for (const adder of ["this instance", "another instance"] as const) {
    it(`an append that waited for the channel row behind addWebhook (${adder}) is queued for the new webhook`, async () => {
      const ch = await newChannel();
      const first = await addWebhook(a, ch.id); // a now knows the channel has webhooks
      await append(a, ch.id);

      const release = await locks.holdChannelRow(ch.id);
      const adding = addWebhook(adder === "this instance" ? a : b, ch.id, "https://second.example/in");
      await locks.waiters(1);
      // Starts before the webhook commits, stores its message after: it must be queued for both webhooks.
      const appending = append(a, ch.id);
      await locks.waiters(2);
      await release();

      const second = await adding;
      const { message } = await appending;
      expect(message.seq).toBe(2);
      expect(await queuedSeqs(first.id)).toEqual([1, 2]);
      expect(await queuedSeqs(second.id)).toEqual([2]);
    });
  }

  it("an append to a channel without webhooks that waited behind addWebhook is queued for it", async () => {
    const ch = await newChannel();
    const release = await locks.holdChannelRow(ch.id);
    const adding = addWebhook(b, ch.id);
    await locks.waiters(1);
    const appending = append(a, ch.id);
    await locks.waiters(2);
    await release();

    const hook = await adding;
    expect((await appending).message.seq).toBe(1);
    expect(await queuedSeqs(hook.id)).toEqual([1]);
  });

  it("an append that got the channel row before addWebhook is not queued; the next one is", async () => {
    const ch = await newChannel();
    const release = await locks.holdChannelRow(ch.id);
    const appending = append(a, ch.id);
    await locks.waiters(1);
    const adding = addWebhook(b, ch.id);
    await locks.waiters(2);
    await release();

    const hook = await adding;
    expect((await appending).message.seq).toBe(1);
    expect((await append(a, ch.id)).message.seq).toBe(2);
    expect(await queuedSeqs(hook.id)).toEqual([2]);
  });

  it("removeWebhook racing an append neither deadlocks nor fails the append; other webhooks keep the message", async () => {
    const ch = await newChannel();
    const [gone, kept] = [await addWebhook(a, ch.id), await addWebhook(a, ch.id, "https://kept.example/in")];
    await append(a, ch.id);

    const release = await locks.holdChannelRow(ch.id);
    const appending = append(a, ch.id);
    await locks.waiters(1);
    const removing = b.removeWebhook(ch.id, gone.id);
    await locks.waiters(2);
    await release();

    const [appended, removed] = await Promise.allSettled([appending, removing]);
    expect(appended.status === "fulfilled" && appended.value.message.seq).toBe(2);
    expect(removed.status === "fulfilled" && removed.value).toBe(true);
    expect(await queuedSeqs(gone.id)).toEqual([]);
    expect(await queuedSeqs(kept.id)).toEqual([1, 2]);
    expect((await a.findChannel(ch.name))?.webhookCount).toBe(1);
  });
});
