import { createServer, type IncomingMessage, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { appRouter, type Context } from "@wedsync/channels";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJsonPostHandler, isPlainJsonPost } from "../src/trpc-http.ts";
import { fullClaims, startTestServer, type TestServer, uid } from "./harness.ts";

/**
 * The JSON POST path must answer exactly as tRPC's own Node handler does: the same router and
 * services behind both, the same raw requests to each, the same status, headers and body.
 */

let server: TestServer;
let stock: Server;
let fast: Server;
const MAX_BODY = 64 * 1024;
const supplier = uid("supplier");
const claims = fullClaims({ sub: uid("user"), role: "supplier", tier: "paid", suppliers: [supplier] });

async function listen(handler: RequestListener): Promise<Server> {
  const http = createServer(handler);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return http;
}
const urlOf = (http: Server) => `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

beforeAll(async () => {
  server = await startTestServer();
  const { services } = server.instance;
  // A bearer token of "anonymous" is a caller without identity; anything else is `claims`.
  const createContext = async (req: IncomingMessage): Promise<Context> =>
    req.headers.authorization === "Bearer anonymous"
      ? { identity: null, services }
      : { identity: claims, services };
  const onError = () => {};
  const options = { router: appRouter, basePath: "/trpc/", maxBodySize: MAX_BODY, createContext, onError };
  const stockHandler = createHTTPHandler({ ...options, createContext: ({ req }) => createContext(req) });
  stock = await listen(stockHandler);
  const jsonPost = createJsonPostHandler(options);
  fast = await listen((req, res) => {
    expect(isPlainJsonPost(req)).toBe(true);
    void jsonPost(req, res);
  });
});

afterAll(async () => {
  stock?.close();
  fast?.close();
  await server?.stop();
});

interface Answer {
  status: number;
  contentType: string | null;
  vary: string | null;
  body: string;
}

async function post(http: Server, path: string, body: string, token = "user"): Promise<Answer> {
  const response = await fetch(`${urlOf(http)}/trpc/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
  });
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    vary: response.headers.get("vary"),
    body: await response.text(),
  };
}

const input = (value: unknown) => JSON.stringify({ json: value });

describe("JSON POSTs outside tRPC's Node adapter", () => {
  it("answer every refusal byte for byte as tRPC's handler does", async () => {
    const channelName = `supplier:dashboard:${supplier}`;
    const cases: Array<[path: string, body: string, token?: string]> = [
      [
        "channel.broadcast",
        input({ channelName, event: "message.posted", payload: { text: "x" } }),
        "anonymous",
      ],
      ["channel.broadcast", "{not json"],
      ["channel.broadcast", ""],
      ["channel.broadcast", input({ channelName: "no:such:thing!", event: "message.posted" })],
      ["channel.broadcast", input({ channelName, event: "message.posted", payload: { text: "x" } })],
      ["channel.broadcast", `{"json":{"channelName":"${channelName}","__proto__":{"admin":true}}}`],
      [
        "channel.broadcast",
        input({ channelName, event: "message.posted", payload: { text: "h".repeat(MAX_BODY) } }),
      ],
      ["channel.subscribers", input({ channelName })],
      ["nothing.here", input({})],
      ["channel.broadcast%E0%A4%A", input({})],
      [
        "channel.broadcast,channel.subscribe?batch=1",
        JSON.stringify({ 0: { json: { channelName } }, 1: { json: { channelName: "bad name" } } }),
      ],
      ["channel.broadcast,channel.broadcast?batch=1", "[1,2]"],
    ];
    for (const [path, body, token] of cases) {
      const [fromStock, fromFast] = await Promise.all([
        post(stock, path, body, token),
        post(fast, path, body, token),
      ]);
      expect({ path, ...fromFast }).toEqual({ path, ...fromStock });
      expect(fromFast.status, path).toBeGreaterThanOrEqual(400);
    }
  });

  it("run mutations, batched or not, with the same results", async () => {
    const create = (entityId: string) => input({ scope: "supplier", entity: "dashboard", entityId });
    const single = await post(fast, "channel.create", create(supplier));
    expect(single.status).toBe(200);
    const channelName = `supplier:dashboard:${supplier}`;
    const broadcast = input({ channelName, event: "message.posted", payload: { text: "hello" } });
    const batch = await post(
      fast,
      "channel.broadcast,channel.broadcast?batch=1",
      JSON.stringify({ 0: JSON.parse(broadcast), 1: JSON.parse(broadcast) }),
    );
    const sameFromStock = await post(stock, "channel.broadcast", broadcast);
    expect(batch.status).toBe(200);
    const seqs = (JSON.parse(batch.body) as Array<{ result: { data: { json: { seq: number } } } }>).map(
      (answer) => answer.result.data.json.seq,
    );
    const stockSeq = (JSON.parse(sameFromStock.body) as { result: { data: { json: { seq: number } } } })
      .result.data.json.seq;
    expect(seqs).toEqual([1, 2]);
    expect(stockSeq).toBe(3);
    expect(batch.contentType).toBe(sameFromStock.contentType);
  });

  it("leave anything else to tRPC's handler", () => {
    const request = (method: string, headers: Record<string, string>) =>
      ({ method, headers }) as unknown as IncomingMessage;
    expect(isPlainJsonPost(request("POST", { "content-type": "Application/JSON; charset=utf-8" }))).toBe(
      true,
    );
    expect(isPlainJsonPost(request("GET", { "content-type": "application/json" }))).toBe(false);
    expect(isPlainJsonPost(request("POST", { "content-type": "text/plain" }))).toBe(false);
    expect(isPlainJsonPost(request("POST", {}))).toBe(false);
    expect(
      isPlainJsonPost(
        request("POST", { "content-type": "application/json", "trpc-accept": "application/jsonl" }),
      ),
    ).toBe(false);
  });
});
