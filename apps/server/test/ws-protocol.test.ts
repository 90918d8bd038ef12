import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type Claims, codeOf, eventually, post, startTestServer, type TestServer, uid } from "./harness.ts";

/**
 * tRPC's WebSocket protocol frame by frame, as wsLink relies on it. Every case runs against the
 * default handler and against tRPC's own adapter (`stock`), the reference it must match.
 */

interface Frame {
  id?: string | number | null;
  method?: string;
  result?: { type: string; id?: string; data?: { json: unknown } };
  error?: { json: { message: string; data: { code: string } } };
}

/** A raw client socket: frames as they arrive, and waits for the one wanted. */
class RawSocket {
  /** tRPC's frames (objects), compact frames (arrays) and PONGs. */
  readonly frames: Array<Frame | unknown[] | string> = [];
  closeCode: number | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const text = String(data);
      this.frames.push(text === "PONG" ? text : (JSON.parse(text) as Frame | unknown[]));
      this.wake();
    });
    ws.on("close", (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on("error", () => {});
  }

  /**
   * `token`: sent as connectionParams (with `frames`, if given); null asks for connectionParams but
   * leaves the frame to the test.
   */
  static async open(url: string, token?: string | null, frames?: string): Promise<RawSocket> {
    const ws = new WebSocket(
      `${url.replace(/^http/, "ws")}/trpc${token === undefined ? "" : "?connectionParams=1"}`,
    );
    const socket = new RawSocket(ws);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    if (typeof token === "string") socket.send({ method: "connectionParams", data: { token, frames } });
    return socket;
  }

  send(message: unknown) {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  subscribe(id: number, channelName: string, lastEventId?: string) {
    const params = { path: "channel.events", input: { json: { channelName } }, lastEventId };
    this.send({ id, method: "subscription", params });
  }

  /** tRPC's frames answering `id`, in arrival order. */
  answers(id: Frame["id"]): Frame[] {
    return this.frames.filter((f): f is Frame => typeof f !== "string" && !Array.isArray(f) && f.id === id);
  }

  /** Compact frames answering `id`, in arrival order. */
  compactAnswers(id: number): unknown[][] {
    return this.frames.filter((f): f is unknown[] => Array.isArray(f) && f[0] === id);
  }

  async until(check: () => boolean, what: string, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for a frame answering `id` that satisfies `check`. */
  async answer(id: Frame["id"], check: (frame: Frame) => boolean = () => true, what = `an answer to ${id}`) {
    await this.until(() => this.answers(id).some(check), what);
    return this.answers(id).find(check)!;
  }

  async started(id: number) {
    await this.answer(id, (f) => f.result?.type === "started" || f.error !== undefined, `started ${id}`);
    const first = this.answers(id)[0]!;
    if (first.error) throw new Error(`subscription ${id} failed: ${JSON.stringify(first.error)}`);
  }

  close() {
    this.ws.close();
  }

  private wake() {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }
}

const errorCodeOf = (frame: Frame) => frame.error?.json.data.code;
const messageIds = (frames: Frame[]) =>
  frames.filter((f) => f.result?.type === "data").map((f) => f.result!.id);

describe.each(["encode-once", "stock"])("tRPC WebSocket protocol (%s)", (mode) => {
  let server: TestServer;
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer({ env: { CHANNELS_FANOUT_MODE: mode } });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.stop();
  });

  const open = async (token?: string | null, frames?: string) => {
    const socket = await RawSocket.open(server.url, token, frames);
    sockets.push(socket);
    return socket;
  };

  const gauge = async (name: string) => {
    const body = await (await fetch(`${server.url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(body)?.[1] ?? Number.NaN);
  };

  /** A supplier, a token for it and one of its channels. */
  async function supplierChannel() {
    const supplierId = uid("s");
    const claims: Claims = { sub: uid("u"), role: "supplier", suppliers: [supplierId] };
    const client = server.client(claims);
    const { name } = await client.trpc.channel.create.mutate({
      scope: "collaboration",
      entity: supplierId,
      entityId: uid("c"),
    });
    return { supplierId, client, name, token: await server.token(claims) };
  }

  it("answers a text PING with PONG and ignores PONG", async () => {
    const socket = await open();
    socket.send("PONG");
    socket.send("PING");
    await socket.until(() => socket.frames.length > 0, "PONG");
    expect(socket.frames).toEqual(["PONG"]);
  });

  it("answers queries and mutations over the socket with a data result each", async () => {
    const { supplierId, token } = await supplierChannel();
    const socket = await open(token);
    const entityId = uid("c");
    socket.send({
      id: 1,
      method: "mutation",
      params: {
        path: "channel.create",
        input: { json: { scope: "collaboration", entity: supplierId, entityId } },
      },
    });
    const created = await socket.answer(1);
    expect(created.result?.type).toBe("data");
    expect((created.result!.data!.json as { name: string }).name).toBe(
      `collaboration:${supplierId}:${entityId}`,
    );

    socket.send({ id: "two", method: "query", params: { path: "channel.list", input: {} } });
    const listed = await socket.answer("two");
    expect(listed.result?.type).toBe("data");
    expect(Array.isArray(listed.result!.data!.json)).toBe(true);

    // A subscription asked for as a query is not found, and answered with its id.
    socket.send({ id: 3, method: "query", params: { path: "channel.events", input: { json: {} } } });
    expect(errorCodeOf(await socket.answer(3))).toBe("NOT_FOUND");
  });

  it("handles every request of a batch frame, each answered with its own id", async () => {
    const { supplierId, name, token } = await supplierChannel();
    const socket = await open(token);
    const entityId = uid("c");
    socket.send([
      { id: 1, method: "query", params: { path: "channel.list", input: {} } },
      {
        id: 2,
        method: "mutation",
        params: {
          path: "channel.create",
          input: { json: { scope: "collaboration", entity: supplierId, entityId } },
        },
      },
      {
        id: 3,
        method: "subscription",
        params: { path: "channel.events", input: { json: { channelName: name } } },
      },
    ]);
    await socket.started(3);
    expect((await socket.answer(1)).result?.type).toBe("data");
    expect((await socket.answer(2)).result?.type).toBe("data");
  });

  it("refuses a whole batch with one malformed request, and a request without an id, with id null", async () => {
    const { supplierId, client, token } = await supplierChannel();
    const socket = await open(token);
    const entityId = uid("c");
    socket.send([
      {
        id: 1,
        method: "mutation",
        params: {
          path: "channel.create",
          input: { json: { scope: "collaboration", entity: supplierId, entityId } },
        },
      },
      { id: 2, method: "teleport", params: { path: "channel.list", input: {} } },
    ]);
    expect(errorCodeOf(await socket.answer(null))).toBe("PARSE_ERROR");

    socket.send({ id: null, method: "query", params: { path: "channel.list", input: {} } });
    await socket.until(() => socket.answers(null).length === 2, "the second PARSE_ERROR");
    expect(socket.answers(null)[1]!.error?.json.message).toBe("`id` is required");

    // Nothing of the refused batch ran.
    const channelName = `collaboration:${supplierId}:${entityId}`;
    expect(await codeOf(client.trpc.channel.subscribers.query({ channelName }))).toBe("NOT_FOUND");
    expect(socket.answers(1)).toEqual([]);
  });

  it("streams tracked items after lastEventId: result.id and data {id, data}, then live ones", async () => {
    const { client, name, token } = await supplierChannel();
    const first = await post(client, name, "first");
    const second = await post(client, name, "second");
    const socket = await open(token);
    socket.subscribe(1, name, first.id);
    await socket.started(1);
    await socket.until(() => messageIds(socket.answers(1)).includes(second.id), "the missed message");
    const third = await post(client, name, "third");
    await socket.until(() => messageIds(socket.answers(1)).includes(third.id), "the live message");
    expect(messageIds(socket.answers(1))).toEqual([second.id, third.id]);
    const tracked = socket.answers(1).find((f) => f.result?.id === second.id)!;
    expect(tracked.result?.data?.json).toMatchObject({
      id: second.id,
      data: { type: "message", seq: second.seq },
    });
  });

  it("sends live messages as compact frames only where asked for; catch-up stays tRPC's frames", async () => {
    const { client, name, token } = await supplierChannel();
    const first = await post(client, name, "first");
    const second = await post(client, name, "second");
    const compact = await open(token, "compact-2");
    // compact-1 (an object with the message in `m`) is no longer served: its clients get tRPC's frames.
    const unknownFormat = await open(token, "compact-1");
    const plain = await open(token);
    for (const socket of [compact, unknownFormat, plain]) {
      socket.subscribe(1, name, first.id);
      await socket.started(1);
      await socket.until(() => messageIds(socket.answers(1)).includes(second.id), "the missed message");
    }
    const third = await post(client, name, "third");
    for (const socket of [unknownFormat, plain])
      await socket.until(() => messageIds(socket.answers(1)).includes(third.id), "the live message");
    // The tRPC adapter (stock) knows no compact frames: its clients get tRPC's frames whatever they ask.
    if (mode === "stock") {
      await compact.until(() => messageIds(compact.answers(1)).includes(third.id), "the live message");
      return;
    }
    await compact.until(() => compact.compactAnswers(1).length > 0, "a compact frame");
    const [live] = compact.compactAnswers(1);
    expect(messageIds(compact.answers(1))).toEqual([second.id]);
    expect(live).toEqual([
      1,
      third.id,
      name,
      third.seq,
      "message.posted",
      { text: "third" },
      expect.any(String),
      expect.any(Number),
    ]);
    const sentAt = (
      plain.answers(1).find((f) => f.result?.id === third.id)!.result!.data!.json as {
        data: { sentAt: string };
      }
    ).data.sentAt;
    expect(live![7]).toBe(Date.parse(sentAt));
  });

  it("refuses a second subscription with an id in use (BAD_REQUEST) and keeps the first", async () => {
    const { client, name, token } = await supplierChannel();
    const socket = await open(token);
    const subscriptionsBefore = await gauge("channels_subscriptions");
    socket.subscribe(5, name);
    await socket.started(5);
    socket.subscribe(5, name);
    expect(errorCodeOf(await socket.answer(5, (f) => f.error !== undefined))).toBe("BAD_REQUEST");
    const live = await post(client, name, "once");
    await socket.until(() => messageIds(socket.answers(5)).includes(live.id), "the live message");
    const fence = await post(client, name, "fence");
    await socket.until(() => messageIds(socket.answers(5)).includes(fence.id), "the fence");
    expect(messageIds(socket.answers(5))).toEqual([live.id, fence.id]);
    expect(await gauge("channels_subscriptions")).toBe(subscriptionsBefore + 1);
  });

  it("subscription.stop ends that stream with `stopped` and releases it; the others go on", async () => {
    const { client, name, token } = await supplierChannel();
    const socket = await open(token);
    const subscriptionsBefore = await gauge("channels_subscriptions");
    socket.subscribe(1, name);
    socket.subscribe(2, name);
    await socket.started(1);
    await socket.started(2);
    expect(await gauge("channels_subscriptions")).toBe(subscriptionsBefore + 2);

    socket.send({ id: 1, method: "subscription.stop" });
    await socket.answer(1, (f) => f.result?.type === "stopped", "stopped");
    await eventually(
      () => gauge("channels_subscriptions"),
      (n) => n === subscriptionsBefore + 1,
      "one stream left",
    );
    const after = await post(client, name, "after the stop");
    await socket.until(
      () => messageIds(socket.answers(2)).includes(after.id),
      "the message on the other stream",
    );
    expect(messageIds(socket.answers(1))).toEqual([]);
  });

  it("closing the socket ends every subscription on it and releases their streams", async () => {
    const { name, token } = await supplierChannel();
    const socket = await open(token);
    const subscriptionsBefore = await gauge("channels_subscriptions");
    for (const id of [1, 2, 3]) socket.subscribe(id, name);
    for (const id of [1, 2, 3]) await socket.started(id);
    expect(await gauge("channels_subscriptions")).toBe(subscriptionsBefore + 3);
    socket.close();
    await eventually(
      () => gauge("channels_subscriptions"),
      (n) => n === subscriptionsBefore,
      "streams released",
    );
  });

  it("without ?connectionParams=1 the context is made at connect: calls are answered UNAUTHORIZED", async () => {
    const socket = await open();
    socket.send({ id: 1, method: "query", params: { path: "channel.list", input: {} } });
    expect(errorCodeOf(await socket.answer(1))).toBe("UNAUTHORIZED");
  });

  it("an unreadable connectionParams frame is answered with id null, then the socket is closed", async () => {
    const socket = await open(null);
    socket.send("not json");
    expect(errorCodeOf(await socket.answer(null))).toBe("PARSE_ERROR");
    await socket.until(() => socket.closeCode !== undefined, "the close");
  });

  it("shutdown tells every client to reconnect, then closes with 1012", async () => {
    const own = await startTestServer({ env: { CHANNELS_FANOUT_MODE: mode } });
    const socket = await RawSocket.open(own.url);
    socket.send("PING");
    await socket.until(() => socket.frames.length > 0, "PONG");
    await own.stop();
    await socket.until(() => socket.closeCode !== undefined, "the close");
    expect(socket.frames).toContainEqual({ id: null, method: "reconnect" });
    expect(socket.closeCode).toBe(1012);
  });
});

/**
 * channel.events is opened without tRPC's procedure runner on the default handler
 * (direct-subscriptions.ts); tRPC's own adapter (`stock`) runs the procedure. Every refusal must
 * reach the client as the same frame from both.
 */
describe("channel.events refusals: the direct path answers as tRPC's procedure runner does", () => {
  const servers: Record<string, TestServer> = {};
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    for (const mode of ["encode-once", "stock"])
      servers[mode] = await startTestServer({ env: { CHANNELS_FANOUT_MODE: mode } });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(Object.values(servers).map((server) => server.stop()));
  });

  const supplierId = uid("s");
  const claims: Claims = { sub: uid("u"), role: "supplier", suppliers: [supplierId] };
  const ownName = `collaboration:${supplierId}:${uid("c")}`;

  /** Opens a socket as `who` on each server, sends the raw `subscription` frame, returns each answer. */
  async function answers(who: "member" | "no token" | "bad token", params: string) {
    const frames: Frame[] = [];
    for (const server of Object.values(servers)) {
      const token =
        who === "member" ? await server.token(claims) : who === "bad token" ? "not.a.jwt" : undefined;
      const socket = await RawSocket.open(server.url, token);
      sockets.push(socket);
      socket.send(`{"id":3,"method":"subscription","params":${params}}`);
      frames.push(await socket.answer(3));
    }
    return frames;
  }

  const cases: Array<[string, "member" | "no token" | "bad token", string, string]> = [
    [
      "no token",
      "no token",
      `{"path":"channel.events","input":{"json":{"channelName":"${ownName}"}}}`,
      "UNAUTHORIZED",
    ],
    [
      "a forged token",
      "bad token",
      `{"path":"channel.events","input":{"json":{"channelName":"${ownName}"}}}`,
      "UNAUTHORIZED",
    ],
    [
      "a malformed name",
      "member",
      `{"path":"channel.events","input":{"json":{"channelName":"no colons"}}}`,
      "BAD_REQUEST",
    ],
    ["no channel name", "member", `{"path":"channel.events","input":{"json":{}}}`, "BAD_REQUEST"],
    [
      "an oversized lastEventId",
      "member",
      `{"path":"channel.events","input":{"json":{"channelName":"${ownName}","lastEventId":"${"x".repeat(200)}"}}}`,
      "BAD_REQUEST",
    ],
    [
      "a hostile input",
      "member",
      `{"path":"channel.events","input":{"json":{"channelName":"${ownName}","__proto__":{"admin":true}}}}`,
      "BAD_REQUEST",
    ],
    [
      "a channel that does not exist",
      "member",
      `{"path":"channel.events","input":{"json":{"channelName":"${ownName}"}}}`,
      "NOT_FOUND",
    ],
    [
      "another supplier's channel",
      "member",
      `{"path":"channel.events","input":{"json":{"channelName":"collaboration:${uid("s")}:${uid("c")}"}}}`,
      "FORBIDDEN",
    ],
  ];

  it.each(cases)("%s", async (_what, who, params, code) => {
    const [direct, procedure] = await answers(who, params);
    expect(errorCodeOf(procedure!)).toBe(code);
    expect(direct).toEqual(procedure);
  });
});
