import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { events, eventually, primeLive, startTestServer, type TestServer, uid } from "./harness.ts";

/** A client that stops reading its socket once connected, like a phone whose app froze. */
class FrozenWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    this.once("open", () => {
      // After the subscription has been sent, stop taking bytes off the wire.
      setTimeout(() => (this as unknown as { _socket: { pause(): void } })._socket.pause(), 300);
    });
  }
}

const LIMIT = 64 * 1024;
const FIELD = "x".repeat(10_000);
const PAYLOAD_BYTES = 3 * FIELD.length;
const MESSAGES = 600;

describe("slow consumers", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      env: {
        CHANNELS_MAX_BUFFERED_BYTES: String(LIMIT),
        CHANNELS_SLOW_CONSUMER_TIMEOUT_MS: "500",
        CHANNELS_RATE_BROADCASTS_PER_MIN: "100000",
      },
    });
  });
  afterAll(() => server?.stop());

  it("a client that stops reading is cut off with bounded server buffers while a fast client gets everything", async () => {
    const s = uid("s");
    const publisher = server.client({ sub: uid("pub"), role: "supplier", suppliers: [s] });
    const channelName = (
      await publisher.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const post = (text: string) =>
      publisher.trpc.channel.broadcast.mutate({ channelName, event: "message.posted", payload: { text } });
    const postLarge = (i: number) =>
      publisher.trpc.channel.broadcast.mutate({
        channelName,
        event: "form.response",
        payload: { formId: "f", submissionId: `s${i}`, fields: { a: FIELD, b: FIELD, c: FIELD } },
      });

    const fast = events(server.client({ sub: uid("fast"), role: "supplier", suppliers: [s] }), channelName);
    const frozen = events(
      server.client(
        { sub: uid("frozen"), role: "supplier", suppliers: [s] },
        { webSocket: FrozenWebSocket as unknown as typeof globalThis.WebSocket, retryDelayMs: () => 60_000 },
      ),
      channelName,
    );
    await Promise.all([fast.started, frozen.started]);
    const probeSeq = await primeLive(fast, (i) => post(`probe ${i}`));
    await new Promise((resolve) => setTimeout(resolve, 400));

    let maxQueued = 0;
    const sampler = setInterval(() => {
      maxQueued = Math.max(maxQueued, ...server.queuedBytes());
    }, 5);
    try {
      for (let i = 0; i < MESSAGES; i++) await postLarge(i);
      await fast.untilMatch(
        (items) => items.some(({ data }) => data.type === "message" && data.seq === probeSeq + MESSAGES),
        "every message at the fast client",
        30_000,
      );
      await eventually(
        async () => {
          const text = await (await fetch(`${server.url}/metrics`)).text();
          return Number(/^channels_slow_consumers_dropped_total (\d+)/m.exec(text)?.[1]);
        },
        (n) => n === 1,
        "the frozen client to be dropped",
      );
    } finally {
      clearInterval(sampler);
    }
    const total = MESSAGES * PAYLOAD_BYTES;
    // Without the bound the server would queue most of the ~18 MB for the frozen socket.
    expect(maxQueued).toBeLessThan(1024 * 1024);
    expect(total).toBeGreaterThan(maxQueued * 10);
    const seqs = fast.messages().map((m) => m.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});
