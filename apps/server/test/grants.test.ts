import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, events, primeLive, startTestServer, type TestServer, text, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

const post = (channelName: string, body: string) => ({
  channelName,
  event: "message.posted" as const,
  payload: { text: body },
});

/** A supplier dashboard, its owner, and a planner of another supplier to share it with. */
async function dashboardAndGuest() {
  const s = uid("s");
  const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
  const guestId = uid("planner");
  const guest = server.client({ sub: guestId, role: "supplier", suppliers: [uid("other")] });
  const name = `supplier:dashboard:${s}`;
  await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s });
  return { owner, guest, guestId, name };
}

describe("channel.grant / channel.revoke", () => {
  it("a grantee reads and publishes; after revoke its live stream ends FORBIDDEN and access is gone", async () => {
    const { owner, guest, guestId, name } = await dashboardAndGuest();

    expect(await codeOf(guest.trpc.channel.subscribe.mutate({ channelName: name }))).toBe("FORBIDDEN");
    expect(await owner.trpc.channel.grant.mutate({ channelName: name, userId: guestId })).toEqual({
      granted: true,
    });
    expect(await owner.trpc.channel.grant.mutate({ channelName: name, userId: guestId })).toEqual({
      granted: false,
    });

    await guest.trpc.channel.subscribe.mutate({ channelName: name });
    const stream = events(guest, name);
    await primeLive(stream, (i) => owner.trpc.channel.broadcast.mutate(post(name, `probe ${i}`)));
    await guest.trpc.channel.broadcast.mutate(post(name, "from the guest"));
    await stream.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "from the guest"),
      "guest message",
    );

    expect(await owner.trpc.channel.revoke.mutate({ channelName: name, userId: guestId })).toEqual({
      revoked: true,
    });
    expect(await stream.failure()).toBe("FORBIDDEN");
    expect(await codeOf(guest.trpc.channel.broadcast.mutate(post(name, "after revoke")))).toBe("FORBIDDEN");
    expect(await codeOf(guest.trpc.channel.subscribe.mutate({ channelName: name }))).toBe("FORBIDDEN");
    const subscribers = await owner.trpc.channel.subscribers.query({ channelName: name });
    expect(subscribers.map((sub) => sub.userId)).not.toContain(guestId);
  });

  it("a revocation does not end the stream of a user the channel's name still admits", async () => {
    const s = uid("s");
    const ownerA = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
    const memberId = uid("member");
    const member = server.client({ sub: memberId, role: "supplier", suppliers: [s] });
    const name = `supplier:dashboard:${s}`;
    await ownerA.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s });
    await ownerA.trpc.channel.grant.mutate({ channelName: name, userId: memberId });
    const stream = events(member, name);
    await primeLive(stream, (i) => ownerA.trpc.channel.broadcast.mutate(post(name, `probe ${i}`)));
    await ownerA.trpc.channel.revoke.mutate({ channelName: name, userId: memberId });
    await ownerA.trpc.channel.broadcast.mutate(post(name, "still here"));
    await stream.untilMatch(
      (items) => items.some(({ data }) => data.type === "message" && text(data) === "still here"),
      "message after revoke",
    );
    expect(stream.error).toBeUndefined();
  });

  it("revoking a grant also ends the grantee's presence watch with FORBIDDEN", async () => {
    const { owner, guest, guestId, name } = await dashboardAndGuest();
    await owner.trpc.channel.grant.mutate({ channelName: name, userId: guestId });
    let watch!: { unsubscribe(): void };
    const ended = new Promise<unknown>((resolve) => {
      const started = new Promise<void>((onStarted) => {
        watch = guest.trpc.presence.events.subscribe(
          { channelName: name },
          { onStarted: () => onStarted(), onError: resolve, onComplete: () => resolve("completed") },
        );
      });
      void started.then(() => owner.trpc.channel.revoke.mutate({ channelName: name, userId: guestId }));
    });
    const failure = await ended;
    watch.unsubscribe();
    expect((failure as { data?: { code?: string } }).data?.code).toBe("FORBIDDEN");
    expect(await codeOf(guest.trpc.presence.list.query({ channelName: name }))).toBe("FORBIDDEN");
  });

  it("only owning members grant: outsiders and grantees get FORBIDDEN, a missing channel is NOT_FOUND for owners", async () => {
    const s = uid("s");
    const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
    const guestId = uid("guest");
    const guest = server.client({ sub: guestId, role: "couple", couples: [uid("c")] });
    const outsider = server.client({ sub: uid("outsider"), role: "supplier", suppliers: [uid("s")] });
    const name = `supplier:dashboard:${s}`;
    await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s });
    await owner.trpc.channel.grant.mutate({ channelName: name, userId: guestId });

    expect(await codeOf(outsider.trpc.channel.grant.mutate({ channelName: name, userId: "x" }))).toBe(
      "FORBIDDEN",
    );
    expect(await codeOf(guest.trpc.channel.grant.mutate({ channelName: name, userId: "x" }))).toBe(
      "FORBIDDEN",
    );
    expect(await codeOf(outsider.trpc.channel.revoke.mutate({ channelName: name, userId: guestId }))).toBe(
      "FORBIDDEN",
    );
    expect(
      await codeOf(
        owner.trpc.channel.grant.mutate({ channelName: `supplier:dashboard:${uid("s")}`, userId: "x" }),
      ),
    ).toBe("FORBIDDEN");
    const missing = `collaboration:${s}:${uid("c")}`;
    expect(await codeOf(owner.trpc.channel.grant.mutate({ channelName: missing, userId: "x" }))).toBe(
      "NOT_FOUND",
    );
  });

  it("a couple granted a venue broadcast reads it but may not publish", async () => {
    const v = uid("v");
    const coordinator = server.client({ sub: uid("coord"), role: "coordinator", venues: [v] });
    const coupleId = uid("couple-user");
    const couple = server.client({ sub: coupleId, role: "couple", couples: [uid("c")] });
    const name = `venue:broadcast:${v}`;
    await coordinator.trpc.channel.create.mutate({ scope: "venue", entity: "broadcast", entityId: v });
    await coordinator.trpc.channel.grant.mutate({ channelName: name, userId: coupleId });

    const stream = events(couple, name);
    await primeLive(stream, (i) =>
      coordinator.trpc.channel.broadcast.mutate({
        channelName: name,
        event: "venue.changed",
        payload: { venueId: v, change: `probe ${i}` },
      }),
    );
    expect(
      await codeOf(
        couple.trpc.channel.broadcast.mutate({
          channelName: name,
          event: "venue.changed",
          payload: { venueId: v, change: "the couple cannot announce" },
        }),
      ),
    ).toBe("FORBIDDEN");
  });

  it("a form response channel belongs to its creator until shared", async () => {
    const creator = server.client({ sub: uid("creator"), role: "supplier", suppliers: [uid("s")] });
    const reviewerId = uid("reviewer");
    const reviewer = server.client({ sub: reviewerId, role: "supplier", suppliers: [uid("s")] });
    const form = uid("f");
    const name = `form:response:${form}:sub1`;
    await creator.trpc.channel.create.mutate({ scope: "form", entity: "response", entityId: `${form}:sub1` });
    expect(await codeOf(reviewer.trpc.channel.subscribe.mutate({ channelName: name }))).toBe("FORBIDDEN");
    expect(
      await codeOf(
        reviewer.trpc.channel.create.mutate({ scope: "form", entity: "response", entityId: `${form}:sub1` }),
      ),
    ).toBe("FORBIDDEN");
    await creator.trpc.channel.grant.mutate({ channelName: name, userId: reviewerId });
    const { subscription } = await reviewer.trpc.channel.subscribe.mutate({ channelName: name });
    expect(subscription.channelName).toBe(name);
  });
});
