import { createChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, startTestServer, type TestServer, text, uid } from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe("token expiry on a WebSocket", () => {
  it("the server closes the socket when its token expires; the client reconnects with a fresh token and resumes", async () => {
    const s = uid("s");
    const claims = { sub: uid("u"), role: "supplier" as const, suppliers: [s] };
    const publisher = server.client(claims);
    const channelName = (
      await publisher.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;

    const minted: string[] = [];
    // The first token lives 1 s (the server allows 5 s of clock skew); every reconnect gets a fresh one.
    const reader = createChannelsClient({
      url: server.url,
      token: async () => {
        const token = await server.token(claims, minted.length === 0 ? "1s" : "1h");
        minted.push(token);
        return token;
      },
      retryDelayMs: () => 50,
    });
    try {
      const stream = collect((handlers) =>
        reader.trpc.channel.events.subscribe({ channelName, lastEventId: null }, handlers),
      );
      await stream.started;
      const post = (body: string) =>
        publisher.trpc.channel.broadcast.mutate({
          channelName,
          event: "message.posted",
          payload: { text: body },
        });
      // Keep publishing across the expiry: nothing may be lost or repeated while the socket is replaced.
      for (let i = 0; i < 75; i++) {
        await post(`m${i}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await stream.untilMatch((items) => items.length >= 75, "all 75 messages", 15_000);
      expect(minted.length).toBeGreaterThanOrEqual(2);
      const texts = stream.messages().map(text);
      expect(texts).toEqual(Array.from({ length: 75 }, (_, i) => `m${i}`));
      expect(stream.error).toBeUndefined();
    } finally {
      await reader.close();
    }
  });
});
