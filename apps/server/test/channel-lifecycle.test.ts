import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, events, startTestServer, type TestServer, uid } from "./harness.ts";

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
});
