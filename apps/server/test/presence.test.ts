import type { PresenceEvent } from "@wedsync/channels";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, events, eventually, startTestServer, type TestServer, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

async function dashboard() {
  const s = uid("s");
  const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
  const channelName = (
    await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
  ).name;
  return { s, owner, channelName };
}

describe("presence", () => {
  it("a user streaming a channel is online until the stream ends, and watchers hear join then leave", async () => {
    const { s, owner, channelName } = await dashboard();
    const watched: PresenceEvent[] = [];
    let watch!: { unsubscribe(): void };
    await new Promise<void>((started) => {
      watch = owner.trpc.presence.events.subscribe(
        { channelName },
        { onStarted: () => started(), onData: (event) => watched.push(event) },
      );
    });
    const aliceId = uid("alice");
    const alice = server.client({ sub: aliceId, role: "supplier", suppliers: [s] });

    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list.length === 0,
      "empty",
    );
    const phone = events(alice, channelName);
    await phone.started;
    const online = await owner.trpc.presence.list.query({ channelName });
    expect(online.map((u) => [u.userId, u.connections])).toEqual([[aliceId, 1]]);

    // A second device is one more connection, not a second join.
    const laptop = events(alice, channelName);
    await laptop.started;
    expect((await owner.trpc.presence.list.query({ channelName }))[0]?.connections).toBe(2);
    laptop.unsubscribe();
    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list[0]?.connections === 1,
      "the laptop to leave",
    );
    phone.unsubscribe();
    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list.length === 0,
      "alice to leave",
    );
    await eventually(
      async () => watched.length,
      (n) => n >= 2,
      "join and leave events",
    );
    expect(watched.map((e) => [e.action, e.userId, e.channel])).toEqual([
      ["join", aliceId, channelName],
      ["leave", aliceId, channelName],
    ]);
    expect(watched[0]?.at).toBeInstanceOf(Date);
    watch.unsubscribe();

    const subscribers = await owner.trpc.channel.subscribers.query({ channelName });
    expect(subscribers.every((sub) => !sub.online)).toBe(true);
  });

  it("channel.subscribers shows who of the durable subscribers is online", async () => {
    const { s, owner, channelName } = await dashboard();
    const bobId = uid("bob");
    const bob = server.client({ sub: bobId, role: "supplier", suppliers: [s] });
    await bob.trpc.channel.subscribe.mutate({ channelName });
    await owner.trpc.channel.subscribe.mutate({ channelName });
    const stream = events(bob, channelName);
    await stream.started;
    const subscribers = await owner.trpc.channel.subscribers.query({ channelName });
    expect(
      Object.fromEntries(subscribers.map((sub) => [sub.userId === bobId ? "bob" : "owner", sub.online])),
    ).toEqual({
      bob: true,
      owner: false,
    });
    stream.unsubscribe();
  });

  it("outsiders may neither list nor watch a channel's presence", async () => {
    const { channelName } = await dashboard();
    const outsider = server.client({ sub: uid("x"), role: "supplier", suppliers: [uid("s")] });
    expect(await codeOf(outsider.trpc.presence.list.query({ channelName }))).toBe("FORBIDDEN");
    const failure = await new Promise<unknown>((resolve) => {
      outsider.trpc.presence.events.subscribe({ channelName }, { onError: resolve });
    });
    expect((failure as { data?: { code?: string } }).data?.code).toBe("FORBIDDEN");
  });
});
