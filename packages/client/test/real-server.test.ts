import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink } from "@trpc/client";
import type { AppRouter, ChannelMessage } from "@wedsync/channels";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  codeOf,
  collect,
  events,
  post,
  primeLive,
  startTestServer,
  supplierDashboard,
  type TestServer,
  uid,
} from "../../../apps/server/test/harness.ts";

/**
 * The client library against the real server (in process), in both of the server's fan-out modes,
 * and the server against tRPC's stock client: all three must agree on the wire.
 */

/** An in-memory PGlite server takes seconds to start, much longer while every package's tests run. */
const SERVER_START_MS = 120_000;

const seqs = (messages: ChannelMessage[]) => messages.map((message) => message.seq);
const consecutive = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

for (const mode of ["encode-once", "stock"] as const) {
  describe(`our client and tRPC's stock client against the server (CHANNELS_FANOUT_MODE=${mode})`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        env: { CHANNELS_FANOUT_MODE: mode, CHANNELS_RATE_BROADCASTS_PER_MIN: "100000" },
      });
    }, SERVER_START_MS);
    afterAll(() => server?.stop());

    it("resumes after every socket is cut, without a gap or a duplicate, with Dates intact", async () => {
      const { s, owner: publisher, channelName } = await supplierDashboard(server);
      const stream = events(
        server.client({ sub: uid("sub"), role: "supplier", suppliers: [s] }),
        channelName,
      );
      const first = await primeLive(stream, (i) => post(publisher, channelName, `probe ${i}`));
      for (let i = 0; i < 10; i++) await post(publisher, channelName, `before ${i}`);
      await stream.untilMatch(
        (items) => items.length > 0 && stream.messages().at(-1)!.seq >= first + 10,
        "10 more",
      );
      // Cut while messages keep coming: some are sent while the client is away.
      const publishing = (async () => {
        for (let i = 0; i < 20; i++) await post(publisher, channelName, `during ${i}`);
      })();
      expect(server.dropConnections()).toBeGreaterThan(0);
      await publishing;
      const last = first + 30;
      await stream.untilMatch(() => stream.messages().at(-1)?.seq === last, `message #${last}`);
      const received = stream.messages().filter((message) => message.seq >= first);
      expect(seqs(received)).toEqual(consecutive(first, last));
      expect(received.every((message) => message.sentAt instanceof Date)).toBe(true);
      expect(stream.error).toBeUndefined();
    });

    it("ends a subscription the caller may not read with FORBIDDEN, and one for a missing channel with NOT_FOUND", async () => {
      const { s, owner, channelName } = await supplierDashboard(server);
      const outsider = server.client({ sub: uid("out"), role: "supplier", suppliers: [uid("other")] });
      expect(await events(outsider, channelName).failure()).toBe("FORBIDDEN");
      expect(await events(owner, `supplier:dashboard:${s}x`).failure()).toBe("FORBIDDEN");
      const missing = `collaboration:${s}:${uid("c")}`;
      expect(await events(owner, missing).failure()).toBe("NOT_FOUND");
    });

    it('with calls: "socket", broadcasts are answered over the WebSocket and reach a subscriber in order; a refused one rejects with its code', async () => {
      const { s, channelName } = await supplierDashboard(server);
      const publisher = server.client(
        { sub: uid("pub"), role: "supplier", suppliers: [s] },
        { calls: "socket" },
      );
      const stream = events(
        server.client({ sub: uid("sub"), role: "supplier", suppliers: [s] }),
        channelName,
      );
      const first = await primeLive(stream, (i) => post(publisher, channelName, `probe ${i}`));
      const stored = [];
      for (let i = 0; i < 5; i++) stored.push(await post(publisher, channelName, `over the socket ${i}`));
      expect(stored.map((message) => message.seq)).toEqual(consecutive(first + 1, first + 5));
      await stream.untilMatch(() => stream.messages().at(-1)?.seq === first + 5, `message #${first + 5}`);
      expect(seqs(stream.messages().filter((message) => message.seq > first))).toEqual(
        consecutive(first + 1, first + 5),
      );
      const outsider = server.client(
        { sub: uid("out"), role: "supplier", suppliers: [uid("other")] },
        { calls: "socket" },
      );
      const sockets = server.openConnections();
      expect(await codeOf(post(outsider, channelName, "not mine"))).toBe("FORBIDDEN");
      // The outsider never subscribed: the socket it opened is the one its call went over.
      expect(server.openConnections()).toBe(sockets + 1);
    });

    // The server must keep working with tRPC's own client (createWSClient + wsLink), in either mode.
    it("works with tRPC's stock client: tracked messages with Dates, resume from lastEventId after a cut", async () => {
      const { s, owner: publisher, channelName } = await supplierDashboard(server);
      const token = await server.token({ sub: uid("stock"), role: "supplier", suppliers: [s] });
      const wsClient = createWSClient({
        url: `${server.url.replace(/^http/, "ws")}/trpc`,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: () => ({ token }),
        retryDelayMs: () => 50,
      });
      const stock = createTRPCClient<AppRouter>({
        links: [
          splitLink({
            condition: (op) => op.type === "subscription",
            true: wsLink({ client: wsClient, transformer: superjson }),
            false: httpBatchLink({
              url: `${server.url}/trpc`,
              transformer: superjson,
              headers: () => ({ authorization: `Bearer ${token}` }),
            }),
          }),
        ],
      });
      try {
        const stream = collect((handlers) => stock.channel.events.subscribe({ channelName }, handlers));
        const first = await primeLive(stream, (i) => post(publisher, channelName, `probe ${i}`));
        for (let i = 0; i < 5; i++) await post(publisher, channelName, `before ${i}`);
        await stream.untilMatch(() => stream.messages().at(-1)?.seq === first + 5, "5 more");
        expect(server.dropConnections()).toBeGreaterThan(0);
        for (let i = 0; i < 5; i++) await post(publisher, channelName, `after ${i}`);
        await stream.untilMatch(() => stream.messages().at(-1)?.seq === first + 10, "5 after the cut");
        const received = stream.messages().filter((message) => message.seq >= first);
        expect(seqs(received)).toEqual(consecutive(first, first + 10));
        expect(received.every((message) => message.sentAt instanceof Date)).toBe(true);
        stream.unsubscribe();
      } finally {
        wsClient.close();
      }
    });
  });
}
