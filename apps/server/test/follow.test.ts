import type { ChannelMessage } from "@wedsync/channels";
import { followChannel } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestServer, type TestServer, text, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe("followChannel (client library)", () => {
  it("hands each message to the app once, acknowledges it, and picks up where it left off", async () => {
    const s = uid("s");
    const c = uid("c");
    const supplier = server.client({ sub: uid("supplier"), role: "supplier", suppliers: [s] });
    const couple = server.client({ sub: uid("couple"), role: "couple", couples: [c] });
    const channelName = (
      await supplier.trpc.channel.create.mutate({ scope: "collaboration", entity: s, entityId: c })
    ).name;
    const post = (body: string) =>
      supplier.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: body },
      });

    const seen: ChannelMessage[] = [];
    let following = await followChannel(
      couple,
      channelName,
      { onMessage: (m) => void seen.push(m) },
      { ackEveryMs: 50 },
    );
    await post("one");
    await post("two");
    await eventually(
      async () => seen.length,
      (n) => n === 2,
      "two live messages",
    );
    await following.stop();
    expect(await couple.trpc.queue.pending.query()).toEqual([]);

    // Offline: three updates arrive while the app is not following.
    for (const body of ["three", "four", "five"]) await post(body);
    expect((await couple.trpc.queue.pending.query()).map(text)).toEqual(["three", "four", "five"]);

    following = await followChannel(
      couple,
      channelName,
      { onMessage: (m) => void seen.push(m) },
      { ackEveryMs: 50 },
    );
    await eventually(
      async () => seen.length,
      (n) => n === 5,
      "the missed messages",
    );
    await post("six");
    await eventually(
      async () => seen.length,
      (n) => n === 6,
      "the next live message",
    );
    await following.stop();

    expect(seen.map(text)).toEqual(["one", "two", "three", "four", "five", "six"]);
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await couple.trpc.queue.pending.query()).toEqual([]);
  });

  it("stops without acknowledging when the app fails a message, so it comes back next time", async () => {
    const s = uid("s");
    const supplier = server.client({ sub: uid("supplier"), role: "supplier", suppliers: [s] });
    const reader = server.client({ sub: uid("reader"), role: "supplier", suppliers: [s] });
    const channelName = (
      await supplier.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const errors: unknown[] = [];
    const following = await followChannel(
      reader,
      channelName,
      {
        onMessage: (m) => {
          if (text(m) === "bad") throw new Error("app could not handle it");
        },
        onError: (error) => errors.push(error),
      },
      { ackEveryMs: 20 },
    );
    for (const body of ["ok", "bad", "later"]) {
      await supplier.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: body },
      });
    }
    await eventually(
      async () => errors.length,
      (n) => n === 1,
      "the handler failure",
    );
    await following.stop();
    expect((await reader.trpc.queue.pending.query()).map(text)).toEqual(["bad", "later"]);
  });
});
