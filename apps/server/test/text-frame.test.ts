import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { textFrame } from "../src/text-frame.ts";

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A `ws` client on a socket the test writes raw bytes to, as the server's live path does. */
async function rawPair() {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server = createServer();
  const transport = new Promise<Socket>((resolve) =>
    server!.on("upgrade", (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, () => resolve(socket as Socket)),
    ),
  );
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise((resolve) => client.once("open", resolve));
  return { client, transport: await transport };
}

describe("textFrame", () => {
  it("is decoded by a WebSocket client as the text it carries, at every length encoding", async () => {
    const { client, transport } = await rawPair();
    // 7-bit, 16-bit and 64-bit payload lengths, each at its edges, and multi-byte UTF-8.
    const texts = [0, 1, 125, 126, 65_535, 65_536, 200_000].map((n) => "x".repeat(n));
    texts.push('{"m":["é","✓"]}');
    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on("message", (data: Buffer, isBinary: boolean) => {
        expect(isBinary).toBe(false);
        received.push(data.toString());
        if (received.length === texts.length) resolve();
      }),
    );
    for (const text of texts) transport.write(textFrame(Buffer.from(text)));
    await all;
    expect(received).toEqual(texts);
    client.close();
  });

  it("builds a payload's frame once and hands the same buffer to every socket", () => {
    const payload = Buffer.from("shared");
    expect(textFrame(payload)).toBe(textFrame(payload));
    expect(textFrame(Buffer.from("shared"))).not.toBe(textFrame(payload));
  });
});
