import type { AddressInfo } from "node:net";
import superjson from "superjson";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import { type ChannelsClient, createChannelsClient, errorCode } from "../src/index.ts";

/**
 * The link against a scripted server that speaks tRPC v11's WebSocket protocol: each test sees the
 * exact frames the client sends and chooses the frames it gets back.
 */

interface Connection {
  socket: WsSocket;
  url: string;
  /** The upgrade request's Sec-WebSocket-Extensions header (what the client offered). */
  extensions: string | undefined;
  /** Every parsed frame the client sent on this connection, in order (arrays flattened). */
  received: Array<Record<string, unknown>>;
  /** Text frames exactly as sent (for PING/PONG). */
  raw: string[];
}

interface ScriptedServer {
  url: string;
  connections: Connection[];
  /** Resolves with the nth connection (0-based) once the client has sent n subscription requests on it. */
  subscriptionsOn(index: number, count?: number): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

const waitUntil = async (check: () => boolean, what: string, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

async function startScriptedServer(): Promise<ScriptedServer> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise((resolve) => wss.once("listening", resolve));
  const connections: Connection[] = [];
  wss.on("connection", (socket, request) => {
    const connection: Connection = {
      socket,
      url: request.url ?? "",
      extensions: request.headers["sec-websocket-extensions"],
      received: [],
      raw: [],
    };
    connections.push(connection);
    socket.on("message", (data) => {
      const text = data.toString();
      connection.raw.push(text);
      if (text === "PING" || text === "PONG") return;
      const parsed = JSON.parse(text);
      for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
        connection.received.push(frame);
        if (frame.method === "subscription")
          socket.send(JSON.stringify({ id: frame.id, result: { type: "started" } }));
      }
    });
  });
  const subscriptions = (index: number) =>
    connections[index]?.received.filter((frame) => frame.method === "subscription") ?? [];
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    connections,
    async subscriptionsOn(index, count = 1) {
      await waitUntil(
        () => subscriptions(index).length >= count,
        `${count} subscription(s) on connection ${index}`,
      );
      return subscriptions(index);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A tracked data frame as the server sends it: `{id, data}` through superjson. */
const dataFrame = (requestId: unknown, trackedId: string, data: unknown) =>
  JSON.stringify({
    id: requestId,
    result: { type: "data", id: trackedId, data: superjson.serialize({ id: trackedId, data }) },
  });

/** The compact live frame the client asks for (`@wedsync/channels/compact-frame`). */
const compactFrame = (requestId: unknown, m: ReturnType<typeof message>) =>
  JSON.stringify([requestId, m.id, m.channel, m.seq, m.event, m.payload, m.senderId, m.sentAt.getTime()]);

const errorFrame = (requestId: unknown, code: string, numericCode: number) =>
  JSON.stringify({
    id: requestId,
    error: superjson.serialize({
      message: `refused: ${code}`,
      code: numericCode,
      data: { code, httpStatus: 403, path: "channel.events" },
    }),
  });

interface Seen {
  data: unknown[];
  started: number;
  error?: unknown;
  completed: boolean;
  states: Array<{ state: string; error: unknown }>;
}

function subscribe(
  client: ChannelsClient,
  input: { channelName: string; lastEventId?: string },
  signal?: AbortSignal,
) {
  const seen: Seen = { data: [], started: 0, completed: false, states: [] };
  const subscription = client.trpc.channel.events.subscribe(input, {
    signal,
    onStarted: () => seen.started++,
    onData: (envelope) => seen.data.push(envelope),
    onError: (error) => {
      seen.error = error;
    },
    onComplete: () => {
      seen.completed = true;
    },
    onConnectionStateChange: (state) => seen.states.push({ state: state.state, error: state.error }),
  });
  return { seen, subscription };
}

const message = (seq: number, text = `message ${seq}`) => ({
  type: "message",
  id: `c1:${seq}`,
  channel: "supplier:dashboard:s1",
  seq,
  event: "message.posted",
  payload: { text },
  senderId: "u1",
  sentAt: new Date(Date.UTC(2026, 5, 20, 14, 0, seq)),
});

describe("subscriptions (tRPC v11 WebSocket protocol)", () => {
  let server: ScriptedServer;
  let client: ChannelsClient | undefined;
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server?.close();
  });

  const start = async (
    token: () => string,
    retryDelayMs: (attempt: number) => number = () => 20,
    calls?: "http" | "socket",
  ) => {
    server = await startScriptedServer();
    client = createChannelsClient({ url: server.url, token, retryDelayMs, calls });
    return client;
  };

  it("connects only once something subscribes, offers no compression, sends the token first, and the input through superjson", async () => {
    const c = await start(() => "token-1");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.connections).toHaveLength(0);

    subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [request] = await server.subscriptionsOn(0);
    const connection = server.connections[0]!;
    expect(connection.url).toBe("/trpc?connectionParams=1");
    // The server never takes permessage-deflate: an offer would only cost every connect.
    expect(connection.extensions).toBeUndefined();
    expect(connection.received[0]).toEqual({
      method: "connectionParams",
      data: { token: "token-1", frames: "compact-2" },
    });
    expect(request).toMatchObject({
      method: "subscription",
      params: { path: "channel.events", input: { json: { channelName: "supplier:dashboard:s1" } } },
    });
    expect(typeof request!.id).toBe("number");
  });

  it("hands over tracked data as {id, data}, with superjson values (Date, Map) restored", async () => {
    const c = await start(() => "t");
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [request] = await server.subscriptionsOn(0);
    const socket = server.connections[0]!.socket;
    socket.send(dataFrame(request!.id, "c1:1", message(1)));
    const withMap = { ...message(2), payload: { fields: new Map([["a", new Date(0)]]) } };
    socket.send(dataFrame(request!.id, "c1:2", withMap));
    await waitUntil(() => seen.data.length === 2, "two events");
    expect(seen.started).toBe(1);
    expect(seen.data[0]).toEqual({ id: "c1:1", data: message(1) });
    const first = seen.data[0] as { data: { sentAt: Date } };
    expect(first.data.sentAt).toBeInstanceOf(Date);
    expect(first.data.sentAt.toISOString()).toBe("2026-06-20T14:00:01.000Z");
    expect(seen.data[1]).toEqual({ id: "c1:2", data: withMap });
    const second = seen.data[1] as { data: { payload: { fields: Map<string, Date> } } };
    expect(second.data.payload.fields.get("a")).toBeInstanceOf(Date);
  });

  it("after the socket is cut, reconnects with a fresh token and resumes from the last tracked id", async () => {
    let issued = 0;
    const c = await start(() => `token-${++issued}`);
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [first] = await server.subscriptionsOn(0);
    const socket = server.connections[0]!.socket;
    socket.send(dataFrame(first!.id, "c1:1", message(1)));
    socket.send(compactFrame(first!.id, message(2)));
    await waitUntil(() => seen.data.length === 2, "two events");
    // The compact frame decodes to what tRPC's frame would have: the tracked item, sentAt a Date.
    expect(seen.data[1]).toEqual({ id: "c1:2", data: message(2) });

    // What the server does when a token expires: close with its token-expired code.
    socket.close(4001, "token expired: reconnect with a fresh token");
    const [again] = await server.subscriptionsOn(1);
    expect(server.connections[1]!.received[0]).toEqual({
      method: "connectionParams",
      data: { token: "token-2", frames: "compact-2" },
    });
    expect(again).toMatchObject({
      method: "subscription",
      params: {
        path: "channel.events",
        input: { json: { channelName: "supplier:dashboard:s1" } },
        lastEventId: "c1:2",
      },
    });
    server.connections[1]!.socket.send(dataFrame(again!.id, "c1:3", message(3)));
    await waitUntil(() => seen.data.length === 3, "the third event");
    expect(seen.data.map((envelope) => (envelope as { id: string }).id)).toEqual(["c1:1", "c1:2", "c1:3"]);
    expect(seen.started).toBe(2);
    expect(seen.error).toBeUndefined();
    // onConnectionStateChange saw the loss (tests of the cluster count these).
    expect(seen.states.some(({ state, error }) => state === "connecting" && error !== null)).toBe(true);
  });

  it("on the server's reconnect notification, moves to a new connection and resubscribes from the last id", async () => {
    const c = await start(() => "t");
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [first] = await server.subscriptionsOn(0);
    const old = server.connections[0]!;
    old.socket.send(dataFrame(first!.id, "c1:7", message(7)));
    old.socket.send(JSON.stringify({ id: null, method: "reconnect" }));
    const [again] = await server.subscriptionsOn(1);
    expect(again!.params).toMatchObject({ lastEventId: "c1:7" });
    await waitUntil(() => old.socket.readyState === old.socket.CLOSED, "the old socket to close");
    expect(seen.data).toHaveLength(1);
    expect(seen.error).toBeUndefined();
  });

  it("unsubscribing sends subscription.stop for that request and nothing reaches the handlers afterwards", async () => {
    const c = await start(() => "t");
    const { seen, subscription } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [request] = await server.subscriptionsOn(0);
    subscription.unsubscribe();
    const connection = server.connections[0]!;
    await waitUntil(
      () => connection.received.some((frame) => frame.method === "subscription.stop"),
      "a stop",
    );
    expect(connection.received.at(-1)).toEqual({ id: request!.id, method: "subscription.stop" });
    connection.socket.send(dataFrame(request!.id, "c1:1", message(1)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.data).toHaveLength(0);
  });

  it("aborting the subscription's signal stops it and completes it; an aborted signal never subscribes", async () => {
    const c = await start(() => "t");
    const abort = new AbortController();
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" }, abort.signal);
    const [request] = await server.subscriptionsOn(0);
    abort.abort();
    expect(seen.completed).toBe(true);
    const connection = server.connections[0]!;
    await waitUntil(
      () => connection.received.some((frame) => frame.method === "subscription.stop"),
      "a stop",
    );
    expect(connection.received.at(-1)).toEqual({ id: request!.id, method: "subscription.stop" });

    const late = subscribe(c, { channelName: "supplier:dashboard:s2" }, AbortSignal.abort());
    expect(late.seen.completed).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connection.received.filter((frame) => frame.method === "subscription")).toHaveLength(1);
    expect(late.seen.started).toBe(0);
  });

  it("a final error code ends the subscription with that code and is not retried", async () => {
    const c = await start(() => "t");
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [request] = await server.subscriptionsOn(0);
    server.connections[0]!.socket.send(errorFrame(request!.id, "FORBIDDEN", -32003));
    await waitUntil(() => seen.error !== undefined, "the error");
    expect(errorCode(seen.error)).toBe("FORBIDDEN");
    expect((seen.error as Error).message).toBe("refused: FORBIDDEN");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.connections[0]!.received.filter((frame) => frame.method === "subscription")).toHaveLength(
      1,
    );
  });

  it("any other error is retried after retryDelayMs, resuming from the last id, without reaching onError", async () => {
    const attempts: number[] = [];
    const c = await start(
      () => "t",
      (attempt) => {
        attempts.push(attempt);
        return 20;
      },
    );
    const { seen } = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const [request] = await server.subscriptionsOn(0);
    const socket = server.connections[0]!.socket;
    socket.send(dataFrame(request!.id, "c1:4", message(4)));
    socket.send(errorFrame(request!.id, "INTERNAL_SERVER_ERROR", -32603));
    const requests = await server.subscriptionsOn(0, 2);
    expect(requests[1]!.params).toMatchObject({ lastEventId: "c1:4" });
    expect(requests[1]!.id).not.toBe(request!.id);
    expect(attempts).toEqual([1]);
    expect(seen.error).toBeUndefined();
    // A late frame for the old request id is ignored.
    socket.send(dataFrame(request!.id, "c1:99", message(99)));
    socket.send(dataFrame(requests[1]!.id, "c1:5", message(5)));
    await waitUntil(() => seen.data.length === 2, "the event after the retry");
    expect(seen.data.map((envelope) => (envelope as { id: string }).id)).toEqual(["c1:4", "c1:5"]);
  });

  it("the server ending the stream completes the subscription; close() completes the others and closes the socket, also taken out of the client", async () => {
    const c = await start(() => "t");
    const ended = subscribe(c, { channelName: "supplier:dashboard:s1" });
    const open = subscribe(c, { channelName: "supplier:dashboard:s2" });
    const requests = await server.subscriptionsOn(0, 2);
    const connection = server.connections[0]!;
    connection.socket.send(JSON.stringify({ id: requests[0]!.id, result: { type: "stopped" } }));
    await waitUntil(() => ended.seen.completed, "the stopped stream to complete");
    expect(open.seen.completed).toBe(false);
    // As in `const { trpc, close } = createChannelsClient(...)`.
    const { close } = c;
    await close();
    expect(open.seen.completed).toBe(true);
    await waitUntil(() => connection.socket.readyState === connection.socket.CLOSED, "the socket to close");
    // No reconnect after close().
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.connections).toHaveLength(1);
  });

  it("answers a text PING with PONG", async () => {
    const c = await start(() => "t");
    subscribe(c, { channelName: "supplier:dashboard:s1" });
    await server.subscriptionsOn(0);
    const connection = server.connections[0]!;
    connection.socket.send("PING");
    await waitUntil(() => connection.raw.includes("PONG"), "PONG");
  });

  describe('queries and mutations over the socket (calls: "socket")', () => {
    const startWithSocketCalls = () => start(() => "t", undefined, "socket");
    const callsOn = async (index: number, count = 1) => {
      const calls = () =>
        server.connections[index]?.received.filter((frame) => frame.method === "mutation") ?? [];
      await waitUntil(() => calls().length >= count, `${count} mutation(s) on connection ${index}`);
      return calls();
    };
    const broadcast = (c: ChannelsClient) =>
      c.trpc.channel.broadcast.mutate({
        channelName: "supplier:dashboard:s1",
        event: "message.posted",
        payload: { text: "hello" },
        idempotencyKey: "k1",
      });

    it("opens the socket for a mutation, sends it as tRPC's wsLink does, and resolves with the decoded answer", async () => {
      const c = await startWithSocketCalls();
      const answered = broadcast(c);
      const [request] = await callsOn(0);
      const connection = server.connections[0]!;
      expect(connection.received[0]).toMatchObject({ method: "connectionParams", data: { token: "t" } });
      expect(request).toMatchObject({
        method: "mutation",
        params: {
          path: "channel.broadcast",
          input: {
            json: {
              channelName: "supplier:dashboard:s1",
              event: "message.posted",
              payload: { text: "hello" },
              idempotencyKey: "k1",
            },
          },
        },
      });
      connection.socket.send(
        JSON.stringify({
          id: request!.id,
          result: { type: "data", data: superjson.serialize({ id: "c1:7", seq: 7, duplicate: false }) },
        }),
      );
      await expect(answered).resolves.toEqual({ id: "c1:7", seq: 7, duplicate: false });
    });

    it("an error answer rejects the call with its tRPC code", async () => {
      const c = await startWithSocketCalls();
      const answered = broadcast(c);
      const [request] = await callsOn(0);
      server.connections[0]!.socket.send(errorFrame(request!.id, "TOO_MANY_REQUESTS", -32029));
      const error = await answered.catch((e: unknown) => e);
      expect(errorCode(error)).toBe("TOO_MANY_REQUESTS");
    });

    /** A subscribed client with a broadcast in flight on its first socket. */
    const subscribedWithCallInFlight = async () => {
      const c = await startWithSocketCalls();
      subscribe(c, { channelName: "supplier:dashboard:s1" });
      await server.subscriptionsOn(0);
      const answered = broadcast(c);
      const [request] = await callsOn(0);
      return { answered, request: request!, first: server.connections[0]! };
    };

    it("a call whose socket closes before the answer fails as one that may have taken effect, and is not sent again", async () => {
      const { answered, first } = await subscribedWithCallInFlight();
      first.socket.terminate();
      await expect(answered).rejects.toThrow(/before the server answered; the call may have taken effect/);
      // The subscription comes back on a new socket; the mutation does not.
      await server.subscriptionsOn(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(server.connections[1]!.received.filter((frame) => frame.method === "mutation")).toHaveLength(0);
    });

    it("on the server's reconnect notification, a call in flight is still answered on the old socket, which then closes; the subscription moves at once", async () => {
      const { answered, request, first: old } = await subscribedWithCallInFlight();
      old.socket.send(JSON.stringify({ id: null, method: "reconnect" }));
      await server.subscriptionsOn(1);
      expect(old.socket.readyState).toBe(old.socket.OPEN);
      old.socket.send(
        JSON.stringify({
          id: request.id,
          result: { type: "data", data: superjson.serialize({ id: "c1:8", seq: 8, duplicate: false }) },
        }),
      );
      await expect(answered).resolves.toEqual({ id: "c1:8", seq: 8, duplicate: false });
      await waitUntil(() => old.socket.readyState === old.socket.CLOSED, "the old socket to close");
    });

    it("a call in flight on a socket the server retires fails as one that may have taken effect if that socket closes unanswered", async () => {
      const { answered, first: old } = await subscribedWithCallInFlight();
      old.socket.send(JSON.stringify({ id: null, method: "reconnect" }));
      await server.subscriptionsOn(1);
      old.socket.close(1012, "server restarting");
      await expect(answered).rejects.toThrow(/before the server answered; the call may have taken effect/);
      await expect(answered).rejects.toMatchObject({
        cause: { message: "WebSocket closed (1012: server restarting)" },
      });
    });

    it("a call aborted before its socket opened is never sent; the subscription that opened it is", async () => {
      const c = await startWithSocketCalls();
      const abort = new AbortController();
      const answered = c.trpc.channel.broadcast.mutate(
        { channelName: "supplier:dashboard:s1", event: "message.posted", payload: { text: "never" } },
        { signal: abort.signal },
      );
      subscribe(c, { channelName: "supplier:dashboard:s1" });
      abort.abort();
      await expect(answered).rejects.toThrow("The call was aborted");
      await server.subscriptionsOn(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(server.connections[0]!.received.filter((frame) => frame.method === "mutation")).toHaveLength(0);
    });

    it("a call to a server that cannot be reached fails as one that was not sent", async () => {
      const c = await startWithSocketCalls();
      await server.close();
      await expect(broadcast(c)).rejects.toThrow(/the call was not sent/);
    });
  });
});
