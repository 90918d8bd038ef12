import { messageId } from "@wedsync/channels";
import type { ChannelsClient } from "@wedsync/client";
import { errorCode } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, post, startTestServer, type TestServer, text, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/** A couple and a supplier on their collaboration channel, plus the couple's own channels. */
async function setup() {
  const supplierId = uid("s");
  const coupleId = uid("c");
  const supplier = server.client({ sub: uid("supplier"), role: "supplier", suppliers: [supplierId] });
  const coupleSub = uid("couple");
  const couple = server.client({ sub: coupleSub, role: "couple", couples: [coupleId] });
  const collab = await supplier.trpc.channel.create.mutate({
    scope: "collaboration",
    entity: supplierId,
    entityId: coupleId,
  });
  const dashboard = await couple.trpc.channel.create.mutate({
    scope: "couple",
    entity: "dashboard",
    entityId: coupleId,
  });
  return { supplierId, coupleId, supplier, couple, coupleSub, collab, dashboard };
}

const pendingOf = async (client: ChannelsClient) =>
  (await client.trpc.queue.pending.query()).map((m) => `${m.channel}|${text(m)}`);

describe("channel.subscribe", () => {
  it("a first subscribe starts at the head; later subscribes return what came after the cursor", async () => {
    const { supplier, couple, collab, coupleId } = await setup();
    const history = [];
    for (const body of ["h1", "h2", "h3"]) history.push(await post(supplier, collab.name, body));

    const first = await couple.trpc.channel.subscribe.mutate({ channelName: collab.name });
    expect(first.missed).toEqual([]);
    expect(first.subscription).toMatchObject({
      channelName: collab.name,
      cursorSeq: 3,
      activeSubscriptions: 1,
    });

    await post(supplier, collab.name, "n1");
    await post(supplier, collab.name, "n2");
    const again = await couple.trpc.channel.subscribe.mutate({ channelName: collab.name });
    expect(again.missed.map(text)).toEqual(["n1", "n2"]);
    expect(again.missed.map((m) => m.seq)).toEqual([4, 5]);
    expect(again.missed[0]).toMatchObject({ type: "message", channel: collab.name, event: "message.posted" });
    expect(again.missed[0]?.sentAt).toBeInstanceOf(Date);
    expect(again.subscription.activeSubscriptions).toBe(1);

    // Another member of the couple resumes from a message id it knows.
    const partner = server.client({ sub: uid("partner"), role: "couple", couples: [coupleId] });
    const resumed = await partner.trpc.channel.subscribe.mutate({
      channelName: collab.name,
      lastMessageId: history[0]!.id,
    });
    expect(resumed.missed.map(text)).toEqual(["h2", "h3", "n1", "n2"]);
    expect(resumed.hasMore).toBe(false);
  });

  it("a lastMessageId that is not one of this channel's message ids is BAD_REQUEST", async () => {
    const { supplier, couple, collab, dashboard } = await setup();
    const elsewhere = await post(couple, dashboard.name, "elsewhere");
    await post(supplier, collab.name, "here");
    for (const lastMessageId of [elsewhere.id, "not-an-id", `${collab.id}:x`]) {
      expect(
        await codeOf(couple.trpc.channel.subscribe.mutate({ channelName: collab.name, lastMessageId })),
      ).toBe("BAD_REQUEST");
    }
    // None of the refused calls subscribed the couple.
    expect(await couple.trpc.channel.list.query()).toEqual([]);
  });
});

describe("queue.pending and queue.ack", () => {
  it("lists unacknowledged messages across the caller's subscriptions, and never another user's", async () => {
    const a = await setup();
    const b = await setup();
    await a.couple.trpc.channel.subscribe.mutate({ channelName: a.collab.name });
    await a.couple.trpc.channel.subscribe.mutate({ channelName: a.dashboard.name });
    await b.couple.trpc.channel.subscribe.mutate({ channelName: b.collab.name });
    // The supplier of wedding A also follows A's collaboration.
    await a.supplier.trpc.channel.subscribe.mutate({ channelName: a.collab.name });
    // A channel couple A may read but did not subscribe to.
    const unsubscribed = await a.couple.trpc.channel.create.mutate({
      scope: "journey",
      entity: "milestone",
      entityId: `${a.coupleId}:m1`,
    });

    await post(a.supplier, a.collab.name, "collab 1");
    await post(a.couple, a.dashboard.name, "note to self");
    await post(b.supplier, b.collab.name, "other wedding");
    await post(a.couple, unsubscribed.name, "not subscribed");
    await post(a.couple, a.collab.name, "collab 2");

    const pendingA = await a.couple.trpc.queue.pending.query();
    expect(pendingA.map((m) => `${m.channel}|${text(m)}`).sort()).toEqual(
      [`${a.collab.name}|collab 1`, `${a.collab.name}|collab 2`, `${a.dashboard.name}|note to self`].sort(),
    );
    // Ordered by seq within each channel.
    const collabSeqs = pendingA.filter((m) => m.channel === a.collab.name).map((m) => m.seq);
    expect(collabSeqs).toEqual([1, 2]);
    expect(await pendingOf(b.couple)).toEqual([`${b.collab.name}|other wedding`]);
    expect(await pendingOf(a.supplier)).toEqual([`${a.collab.name}|collab 1`, `${a.collab.name}|collab 2`]);

    // Acknowledging the first collab message moves only the caller's cursor, only that far.
    const collab1 = pendingA.find((m) => text(m) === "collab 1")!;
    expect(await a.couple.trpc.queue.ack.mutate({ messageIds: [collab1.id] })).toEqual({ acked: 1 });
    expect((await pendingOf(a.couple)).sort()).toEqual(
      [`${a.collab.name}|collab 2`, `${a.dashboard.name}|note to self`].sort(),
    );
    expect(await pendingOf(a.supplier)).toEqual([`${a.collab.name}|collab 1`, `${a.collab.name}|collab 2`]);

    // Acknowledging everything empties the queue; acking again moves nothing.
    const ids = pendingA.map((m) => m.id);
    expect(await a.couple.trpc.queue.ack.mutate({ messageIds: ids })).toEqual({ acked: 2 });
    expect(await a.couple.trpc.queue.pending.query()).toEqual([]);
    expect(await a.couple.trpc.queue.ack.mutate({ messageIds: ids })).toEqual({ acked: 0 });

    // Anything new is pending again.
    await post(a.supplier, a.collab.name, "collab 3");
    expect(await pendingOf(a.couple)).toEqual([`${a.collab.name}|collab 3`]);
  });

  it("acking ids of a channel the caller is not subscribed to changes nothing", async () => {
    const a = await setup();
    const b = await setup();
    await a.couple.trpc.channel.subscribe.mutate({ channelName: a.collab.name });
    await b.couple.trpc.channel.subscribe.mutate({ channelName: b.collab.name });
    await post(a.supplier, a.collab.name, "for A");
    const forB = await post(b.supplier, b.collab.name, "for B");

    // Couple A knows (or guesses) an id of wedding B.
    expect(await a.couple.trpc.queue.ack.mutate({ messageIds: [forB.id] })).toEqual({ acked: 0 });
    expect(await pendingOf(b.couple)).toEqual([`${b.collab.name}|for B`]);
    expect(await pendingOf(a.couple)).toEqual([`${a.collab.name}|for A`]);
    // Malformed ids are ignored rather than half-applied.
    expect(await a.couple.trpc.queue.ack.mutate({ messageIds: ["nonsense", "x:1"] })).toEqual({ acked: 0 });
    expect(await pendingOf(a.couple)).toEqual([`${a.collab.name}|for A`]);
  });

  it("an ack from the future cannot hide messages that have not been sent yet", async () => {
    const { supplier, couple, collab } = await setup();
    await couple.trpc.channel.subscribe.mutate({ channelName: collab.name });
    await post(supplier, collab.name, "sent");
    await couple.trpc.queue.ack.mutate({ messageIds: [messageId(collab.id, 1_000)] });
    expect(await couple.trpc.queue.pending.query()).toEqual([]);
    await post(supplier, collab.name, "sent later");
    expect(await pendingOf(couple)).toEqual([`${collab.name}|sent later`]);
  });
});

describe("channel.list", () => {
  it("lists the caller's subscribed channels with unread counts that follow acks and unsubscribes", async () => {
    const { supplier, couple, collab, dashboard } = await setup();
    await couple.trpc.channel.subscribe.mutate({ channelName: collab.name });
    await couple.trpc.channel.subscribe.mutate({ channelName: dashboard.name });
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await post(supplier, collab.name, `c${i}`));
    await post(couple, dashboard.name, "d0");

    const unread = async () =>
      Object.fromEntries((await couple.trpc.channel.list.query()).map((c) => [c.name, c.unread]));
    expect(await unread()).toEqual({ [collab.name]: 3, [dashboard.name]: 1 });
    const listed = (await couple.trpc.channel.list.query()).find((c) => c.name === collab.name);
    expect(listed).toMatchObject({ id: collab.id, type: "shared", lastSeq: 3, unread: 3 });

    await couple.trpc.queue.ack.mutate({ messageIds: [sent[1]!.id] });
    expect(await unread()).toEqual({ [collab.name]: 1, [dashboard.name]: 1 });

    expect(await couple.trpc.channel.unsubscribe.mutate({ channelName: dashboard.name })).toEqual({
      unsubscribed: true,
    });
    expect(await unread()).toEqual({ [collab.name]: 1 });
    expect(await pendingOf(couple)).toEqual([`${collab.name}|c2`]);
    // The supplier never subscribed: nothing listed for them.
    expect(await supplier.trpc.channel.list.query()).toEqual([]);
  });
});

describe("tier limits", () => {
  async function milestones(client: ChannelsClient, coupleId: string, n: number) {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const created = await client.trpc.channel.create.mutate({
        scope: "journey",
        entity: "milestone",
        entityId: `${coupleId}:m${i}`,
      });
      names.push(created.name);
    }
    return names;
  }

  it("a free user's 4th active subscription is PRECONDITION_FAILED until one is unsubscribed", async () => {
    const coupleId = uid("c");
    const couple = server.client({ sub: uid("free"), role: "couple", tier: "free", couples: [coupleId] });
    const names = await milestones(couple, coupleId, 5);
    for (const channelName of names.slice(0, 3)) await couple.trpc.channel.subscribe.mutate({ channelName });

    let refusal: unknown;
    try {
      await couple.trpc.channel.subscribe.mutate({ channelName: names[3]! });
    } catch (error) {
      refusal = error;
    }
    expect(errorCode(refusal)).toBe("PRECONDITION_FAILED");
    expect((refusal as Error).message).toMatch(/free tier allows 3/);
    // Renewing an active subscription is not a new one.
    await couple.trpc.channel.subscribe.mutate({ channelName: names[0]! });
    expect((await couple.trpc.channel.list.query()).map((c) => c.name).sort()).toEqual(
      names.slice(0, 3).sort(),
    );

    await couple.trpc.channel.unsubscribe.mutate({ channelName: names[1]! });
    const fourth = await couple.trpc.channel.subscribe.mutate({ channelName: names[3]! });
    expect(fourth.subscription.activeSubscriptions).toBe(3);
    expect(await codeOf(couple.trpc.channel.subscribe.mutate({ channelName: names[4]! }))).toBe(
      "PRECONDITION_FAILED",
    );
  });

  it("concurrent subscribes cannot race past the limit", async () => {
    const coupleId = uid("c");
    const couple = server.client({ sub: uid("free"), role: "couple", tier: "free", couples: [coupleId] });
    const names = await milestones(couple, coupleId, 6);
    const results = await Promise.allSettled(
      names.map((channelName) => couple.trpc.channel.subscribe.mutate({ channelName })),
    );
    const refused = results.filter((r) => r.status === "rejected").map((r) => errorCode(r.reason));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(refused).toEqual(["PRECONDITION_FAILED", "PRECONDITION_FAILED", "PRECONDITION_FAILED"]);
    expect(await couple.trpc.channel.list.query()).toHaveLength(3);
  });

  it("a paid user gets 10 active subscriptions", async () => {
    const coupleId = uid("c");
    const couple = server.client({ sub: uid("paid"), role: "couple", tier: "paid", couples: [coupleId] });
    const names = await milestones(couple, coupleId, 11);
    for (const channelName of names.slice(0, 10)) await couple.trpc.channel.subscribe.mutate({ channelName });
    expect(await couple.trpc.channel.list.query()).toHaveLength(10);
    expect(await codeOf(couple.trpc.channel.subscribe.mutate({ channelName: names[10]! }))).toBe(
      "PRECONDITION_FAILED",
    );
  });
});
