import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { codeOf, events, eventually, primeLive, startTestServer, type TestServer, uid } from "./harness.ts";

/** A `ws` client that never answers pings: a peer that went silent without closing. */
class SilentWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { autoPong: false });
  }
}

/** Opens a raw WebSocket to /trpc; resolves with the close code, or the HTTP status it was refused with. */
function rawConnect(server: TestServer): Promise<{ socket?: WebSocket; refusedWith?: number }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${server.url.replace("http", "ws")}/trpc`);
    socket.once("open", () => resolve({ socket }));
    socket.once("unexpected-response", (_req, res) => resolve({ refusedWith: res.statusCode }));
    socket.once("error", () => {});
  });
}

const closeCode = (socket: WebSocket) =>
  new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));

async function metric(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

describe("heartbeats", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: { CHANNELS_HEARTBEAT_MS: "150", CHANNELS_HEARTBEAT_TIMEOUT_MS: "200" },
    });
  });
  afterAll(() => server?.stop());

  it("a client that goes silent is terminated within the timeout and leaves presence", async () => {
    const s = uid("s");
    const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
    const channelName = (
      await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const ghostId = uid("ghost");
    const ghost = server.client(
      { sub: ghostId, role: "supplier", suppliers: [s] },
      { webSocket: SilentWebSocket as unknown as typeof globalThis.WebSocket, retryDelayMs: () => 60_000 },
    );
    const before = await metric(server, "channels_heartbeat_timeouts_total");
    const stream = events(ghost, channelName);
    await stream.started;
    expect((await owner.trpc.presence.list.query({ channelName })).map((u) => u.userId)).toEqual([ghostId]);

    await eventually(
      () => metric(server, "channels_heartbeat_timeouts_total"),
      (n) => n === before + 1,
      "the silent connection to be terminated",
      5_000,
    );
    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list.length === 0,
      "presence gone",
    );
  });

  it("a client that answers pings stays connected across many heartbeats", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("member"), role: "supplier", suppliers: [s] });
    const channelName = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const stream = events(member, channelName);
    await stream.started;
    const connections = server.openConnections();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(server.openConnections()).toBe(connections);
    await primeLive(stream, (i) =>
      member.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: `still ${i}` },
      }),
    );
    expect(stream.error).toBeUndefined();
  });
});

describe("connection limits", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: {
        CHANNELS_MAX_CONNECTIONS: "3",
        CHANNELS_RATE_CONNECTIONS_PER_IP_PER_MIN: "6",
        CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION: "2",
        CHANNELS_RATE_MESSAGES_PER_CONNECTION: "20",
      },
    });
  });
  afterAll(() => server?.stop());

  it("refuses connections over the instance maximum with 503, and over the per-IP rate with 429", async () => {
    const open: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const { socket } = await rawConnect(server);
      expect(socket).toBeDefined();
      open.push(socket!);
    }
    expect((await rawConnect(server)).refusedWith).toBe(503);
    for (const socket of open) socket.close();
    await eventually(
      async () => server.openConnections(),
      (n) => n === 0,
      "sockets to close",
    );
    // 3 connects so far were counted against this IP's 6 per minute (a 503 is refused before counting).
    for (let i = 0; i < 3; i++) {
      const { socket } = await rawConnect(server);
      expect(socket).toBeDefined();
      socket!.close();
    }
    expect((await rawConnect(server)).refusedWith).toBe(429);
  });
});

describe("per-connection limits", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: { CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION: "2", CHANNELS_RATE_MESSAGES_PER_CONNECTION: "20" },
    });
  });
  afterAll(() => server?.stop());

  it("a connection may hold a bounded number of live subscriptions; ending one frees a slot", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("member"), role: "supplier", suppliers: [s] });
    const channelName = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const first = events(member, channelName);
    const second = events(member, channelName);
    await Promise.all([first.started, second.started]);
    const third = events(member, channelName);
    expect(await third.failure()).toBe("TOO_MANY_REQUESTS");
    first.unsubscribe();
    await eventually(
      async () => {
        const attempt = events(member, channelName);
        const started = await Promise.race([
          attempt.started.then(() => true),
          attempt.failure(2_000).then(() => false),
        ]);
        attempt.unsubscribe();
        return started;
      },
      (ok) => ok,
      "a freed slot",
    );
    expect(
      await codeOf(Promise.reject(new Error("noop")).catch(() => Promise.reject(new Error("x")))),
    ).toContain("x");
  });

  it("a connection flooding messages is closed with 1008", async () => {
    const { socket } = await rawConnect(server);
    const closed = closeCode(socket!);
    for (let i = 0; i < 40; i++)
      socket!.send(JSON.stringify({ id: i, method: "query", params: { path: "nope" } }));
    expect(await closed).toBe(1008);
  });
});
