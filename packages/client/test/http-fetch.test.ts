import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpFetch } from "#http-fetch";
import { httpFetch as nodeHttpFetch } from "../src/http-fetch.node.ts";

/** Answers by path: echo (the request as JSON), 400 with a JSON error, 503 with text, or never. */
let server: Server;
let base: string;
const bodyOf = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => resolve(body));
  });

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await bodyOf(req);
    if (req.url === "/echo") {
      res.writeHead(200, { "content-type": "application/json", "x-served-by": "test" });
      res.end(
        JSON.stringify({
          method: req.method,
          auth: req.headers.authorization,
          type: req.headers["content-type"],
          body,
        }),
      );
    } else if (req.url === "/refused") {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "bad input" } }));
    } else if (req.url === "/draining") {
      res.writeHead(503, { "retry-after": "1" });
      res.end("Service Unavailable");
    }
    // "/hang": never answered.
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

type Fetch = NonNullable<typeof nodeHttpFetch>;
const fetchers: Array<[string, Fetch]> = [
  ["the platform's fetch", globalThis.fetch as unknown as Fetch],
  ["httpFetch (undici request)", nodeHttpFetch],
];

describe("httpFetch", () => {
  it("is what the client uses in Node", () => {
    expect(httpFetch).toBe(nodeHttpFetch);
  });

  describe.each(fetchers)("%s", (_, fetch) => {
    it("sends method, headers and body, and reads a JSON answer", async () => {
      const res = await fetch(`${base}/echo`, {
        method: "POST",
        headers: { authorization: "Bearer t0k3n", "content-type": "application/json" },
        body: '{"json":{"a":1}}',
      });
      expect(res.ok).toBe(true);
      expect(await res.json()).toEqual({
        method: "POST",
        auth: "Bearer t0k3n",
        type: "application/json",
        body: '{"json":{"a":1}}',
      });
    });

    it("resolves an error status with its JSON body and ok false", async () => {
      const res = await fetch(`${base}/refused`, { method: "POST", body: "{}" });
      expect(res.ok).toBe(false);
      expect(await res.json()).toEqual({ error: { message: "bad input" } });
    });

    it("rejects json() of a body that is not JSON", async () => {
      const res = await fetch(`${base}/draining`, { method: "GET" });
      expect(res.ok).toBe(false);
      await expect(res.json()).rejects.toThrow();
    });

    it("rejects when the signal aborts a request in flight", async () => {
      const controller = new AbortController();
      const pending = fetch(`${base}/hang`, { method: "POST", body: "{}", signal: controller.signal });
      setTimeout(() => controller.abort(), 20);
      await expect(pending).rejects.toThrow();
    });

    it("rejects when nothing listens", async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise((resolve) => closed.close(resolve));
      await expect(fetch(`http://127.0.0.1:${port}/echo`, { method: "GET" })).rejects.toThrow();
    });
  });
});
