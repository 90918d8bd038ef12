import type { ChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  type Claims,
  type Collector,
  codeOf,
  events,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

/**
 * A collaboration channel with an opening message, a couple that follows it durably
 * (channel.subscribe) and live (channel.events from the opening message).
 */
async function watchedChannel() {
  const supplierId = uid("s");
  const coupleId = uid("c");
  const supplierClaims: Claims = { sub: uid("supplier"), role: "supplier", suppliers: [supplierId] };
  const supplier = server.client(supplierClaims);
  const couple = server.client({ sub: uid("couple"), role: "couple", couples: [coupleId] });
  const { name } = await supplier.trpc.channel.create.mutate({
    scope: "collaboration",
    entity: supplierId,
    entityId: coupleId,
  });
  await couple.trpc.channel.subscribe.mutate({ channelName: name });
  const opening = await supplier.trpc.channel.broadcast.mutate({
    channelName: name,
    event: "message.posted",
    payload: { text: "opening" },
  });
  const stream = events(couple, name, opening.id);
  return { name, supplier, supplierClaims, couple, opening, stream };
}

/**
 * Proves nothing was written since the opening message: the next valid broadcast gets the next seq,
 * and it is the only thing the live stream and the couple's pending queue show.
 */
async function expectNothingWritten(w: {
  name: string;
  supplier: ChannelsClient;
  couple: ChannelsClient;
  opening: { seq: number };
  stream: Collector;
}) {
  const fence = await w.supplier.trpc.channel.broadcast.mutate({
    channelName: w.name,
    event: "message.posted",
    payload: { text: "fence" },
  });
  expect(fence.seq).toBe(w.opening.seq + 1);
  await w.stream.until(1);
  expect(w.stream.messages().map(text)).toEqual(["fence"]);
  expect((await w.couple.trpc.queue.pending.query()).map(text)).toEqual(["opening", "fence"]);
  const [listed] = await w.couple.trpc.channel.list.query();
  expect(listed?.lastSeq).toBe(fence.seq);
}

describe("channel names", () => {
  const bad: Record<string, string[]> = {
    "wrong scope": ["wedding:dashboard:s1", "Supplier:dashboard:s1", "admin:stats:all"],
    "wrong entity": ["supplier:profile:s1", "form:answer:f1:x", "venue:chat:v1"],
    "bad characters": [
      "supplier:dashboard:a b",
      "supplier:dashboard:a/b",
      "supplier:dashboard:é",
      "supplier:dashboard:<script>",
      "supplier:dashboard:s1;drop",
      "supplier:dashboard:s1\n",
    ],
    "empty segment": ["", ":", "supplier::s1", "supplier:dashboard:", ":dashboard:s1"],
    "too long": [
      `supplier:dashboard:${"a".repeat(65)}`,
      `collaboration:${"s".repeat(200)}:${"c".repeat(200)}`,
      "x".repeat(5_000),
    ],
    "wrong segment count": [
      "supplier:dashboard",
      "supplier:dashboard:s1:extra",
      "form:response:f1",
      "journey:milestone:c1",
      "collaboration:s1:c1:x",
      "venue:broadcast:v1:v2",
    ],
  };

  for (const [kind, names] of Object.entries(bad)) {
    it(`${kind}: BAD_REQUEST from subscribe, broadcast, subscribers and events`, async () => {
      // A user who is a member of everything the names mention: only the name itself is wrong.
      const client = server.client({
        sub: uid("u"),
        role: "supplier",
        suppliers: ["s1", "a", "x"],
        couples: ["c1"],
        venues: ["v1"],
      });
      for (const channelName of names) {
        const stream = events(client, channelName);
        const codes = {
          channelName,
          subscribe: await codeOf(client.trpc.channel.subscribe.mutate({ channelName })),
          broadcast: await codeOf(
            client.trpc.channel.broadcast.mutate({
              channelName,
              event: "message.posted",
              payload: { text: "x" },
            }),
          ),
          subscribers: await codeOf(client.trpc.channel.subscribers.query({ channelName })),
          events: await stream.failure(),
        };
        expect(codes).toEqual({
          channelName,
          subscribe: "BAD_REQUEST",
          broadcast: "BAD_REQUEST",
          subscribers: "BAD_REQUEST",
          events: "BAD_REQUEST",
        });
      }
      expect(await client.trpc.channel.list.query()).toEqual([]);
    });
  }

  it("channel.create rejects parts that do not make a valid name", async () => {
    const s = uid("s");
    const client = server.client({ sub: uid("u"), role: "supplier", suppliers: [s, "a"] });
    const attempts = [
      { scope: "wedding", entity: "dashboard", entityId: s },
      { scope: "supplier", entity: "profile", entityId: s },
      { scope: "supplier", entity: "dashboard", entityId: "" },
      { scope: "supplier", entity: "dashboard", entityId: "a b" },
      { scope: "supplier", entity: "dashboard", entityId: `${s}:extra` },
      { scope: "supplier", entity: "dashboard", entityId: "a".repeat(65) },
      { scope: "supplier:dashboard", entity: "x", entityId: s },
      // The type is decided by the name; a contradicting one is refused.
      { scope: "supplier", entity: "dashboard", entityId: s, type: "broadcast" as const },
      { scope: "supplier", entity: "dashboard", entityId: s, metadata: { big: "x".repeat(5_000) } },
    ];
    for (const input of attempts) {
      expect({ input, code: await codeOf(client.trpc.channel.create.mutate(input)) }).toEqual({
        input,
        code: "BAD_REQUEST",
      });
    }
    // Nothing was created by the refused attempts.
    expect(
      await codeOf(client.trpc.channel.subscribers.query({ channelName: `supplier:dashboard:${s}` })),
    ).toBe("NOT_FOUND");
  });
});

describe("broadcast payloads", () => {
  it("unknown events, wrong field types, extra keys and oversized payloads are BAD_REQUEST and write nothing", async () => {
    const w = await watchedChannel();
    const big = "x".repeat(9_000);
    const attempts: Array<[string, unknown]> = [
      ["unknown event", { event: "message.deleted", payload: { text: "x" } }],
      ["empty event", { event: "", payload: { text: "x" } }],
      ["prototype event", { event: "__proto__", payload: { text: "x" } }],
      ["no payload", { event: "message.posted" }],
      ["text is a number", { event: "message.posted", payload: { text: 42 } }],
      ["text is null", { event: "message.posted", payload: { text: null } }],
      ["text is empty", { event: "message.posted", payload: { text: "" } }],
      ["text only markup", { event: "message.posted", payload: { text: "<script>alert(1)</script>" } }],
      ["payload is a string", { event: "message.posted", payload: "hello" }],
      ["payload is an array", { event: "message.posted", payload: ["hello"] }],
      ["extra key", { event: "message.posted", payload: { text: "hi", html: "<b>hi</b>" } }],
      [
        "extra key on timeline",
        { event: "timeline.updated", payload: { itemId: "i1", title: "t", color: "red" } },
      ],
      ["bad itemId", { event: "timeline.updated", payload: { itemId: "no spaces allowed", title: "t" } }],
      [
        "bad startsAt",
        { event: "timeline.updated", payload: { itemId: "i1", title: "t", startsAt: "tomorrow" } },
      ],
      ["bad status", { event: "journey.milestone", payload: { milestoneId: "m1", status: "DONE!" } }],
      ["venueId missing", { event: "venue.changed", payload: { change: "moved" } }],
      [
        "bad field name",
        { event: "form.response", payload: { formId: "f", submissionId: "s", fields: { "a b": 1 } } },
      ],
      [
        "nested field",
        {
          event: "form.response",
          payload: { formId: "f", submissionId: "s", fields: { a: { nested: true } } },
        },
      ],
      [
        "33 KiB payload",
        {
          event: "form.response",
          payload: { formId: "f", submissionId: "s", fields: { a: big, b: big, c: big, d: big } },
        },
      ],
      ["text over its limit", { event: "message.posted", payload: { text: "y".repeat(33 * 1024) } }],
    ];
    for (const [label, body] of attempts) {
      const input = { channelName: w.name, ...(body as object) };
      const code = await codeOf(
        // Deliberately outside the typed input: this is what a buggy or hostile client sends.
        w.supplier.trpc.channel.broadcast.mutate(
          input as Parameters<typeof w.supplier.trpc.channel.broadcast.mutate>[0],
        ),
      );
      expect({ label, code }).toEqual({ label, code: "BAD_REQUEST" });
    }
    await expectNothingWritten(w);
  });

  it("the payload size limit is 32 KiB: just under is stored, just over is refused with a readable reason", async () => {
    const w = await watchedChannel();
    const field = (n: number) => "z".repeat(n);
    const payload = (total: number) => ({
      formId: "f",
      submissionId: "s",
      fields: { a: field(10_000), b: field(10_000), c: field(10_000), d: field(total) },
    });
    let refusal: unknown;
    try {
      await w.supplier.trpc.channel.broadcast.mutate({
        channelName: w.name,
        event: "form.response",
        payload: payload(3_000),
      });
    } catch (error) {
      refusal = error;
    }
    expect((refusal as Error | undefined)?.message).toMatch(/limit is 32768/);
    await expectNothingWritten(w);

    const stored = await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "form.response",
      payload: payload(2_000),
    });
    expect(stored.seq).toBe(w.opening.seq + 2);
    await w.stream.until(2);
    const delivered = w.stream.messages().at(-1)!;
    expect(delivered.event).toBe("form.response");
    expect(delivered.payload).toEqual(payload(2_000));
  });

  it("top-level keys a client adds cannot forge the sender", async () => {
    const w = await watchedChannel();
    const input = {
      channelName: w.name,
      event: "message.posted",
      payload: { text: "who sent this?" },
      senderId: "someone-else",
      seq: 1,
    } as unknown as Parameters<typeof w.supplier.trpc.channel.broadcast.mutate>[0];
    // Unknown top-level keys are dropped (only the payload is strict): the server decides sender and seq.
    const result = await w.supplier.trpc.channel.broadcast.mutate(input);
    expect(result.seq).toBe(w.opening.seq + 1);
    await w.stream.until(1);
    const [message] = w.stream.messages();
    expect(message).toMatchObject({
      senderId: w.supplierClaims.sub,
      seq: w.opening.seq + 1,
      payload: { text: "who sent this?" },
    });
  });
});

describe("raw HTTP bodies", () => {
  async function rawBroadcast(
    w: { name: string; supplierClaims: Claims },
    init: RequestInit,
    path = "channel.broadcast",
  ) {
    const token = await server.token(w.supplierClaims);
    const response = await fetch(`${server.url}/trpc/${path}`, {
      method: "POST",
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
    });
    const body = await response.text();
    return { status: response.status, body };
  }

  it("garbage instead of JSON is a 400 BAD_REQUEST and writes nothing", async () => {
    const w = await watchedChannel();
    const json = { "content-type": "application/json" };
    for (const body of ["{not json", "", "\u0000\u0001\u0002", "[1,2,", '{"json": ']) {
      const response = await rawBroadcast(w, { body, headers: json });
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
      expect(JSON.parse(response.body).error.json.data.code).toBe("BAD_REQUEST");
    }
    // Well-formed JSON of the wrong shape, and a forged superjson envelope.
    for (const body of [
      "null",
      "42",
      JSON.stringify({ json: { channelName: 5 } }),
      JSON.stringify({ json: { channelName: w.name, event: "message.posted", payload: { text: 5 } } }),
      JSON.stringify({
        json: { channelName: w.name, event: "message.posted", payload: { text: "x" } },
        meta: { values: { payload: ["map"] } },
      }),
    ]) {
      const response = await rawBroadcast(w, { body, headers: json });
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
    }
    await expectNothingWritten(w);
  });

  it("prototype-pollution keys and absurd nesting in the raw JSON are BAD_REQUEST and write nothing", async () => {
    const w = await watchedChannel();
    const json = { "content-type": "application/json" };
    const form = (fields: string) =>
      `{"json":{"channelName":"${w.name}","event":"form.response","payload":{"formId":"f","submissionId":"s","fields":${fields}}}}`;
    for (const body of [
      form('{"__proto__":{"polluted":true}}'),
      form('{"constructor":{"prototype":{"polluted":true}}}'),
      `{"json":{"channelName":"${w.name}","event":"message.posted","payload":{"text":"x"},"__proto__":{"admin":true}}}`,
      `{"json":${"[".repeat(5_000)}${"]".repeat(5_000)}}`,
    ]) {
      const response = await rawBroadcast(w, { body, headers: json });
      expect({ body: body.slice(0, 80), status: response.status }).toEqual({
        body: body.slice(0, 80),
        status: 400,
      });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectNothingWritten(w);
  });

  it("a body without a JSON content type, a GET to a mutation and an oversized body are refused and write nothing", async () => {
    const w = await watchedChannel();
    const untyped = await rawBroadcast(w, { body: "garbage" });
    expect(untyped.status).toBe(415);
    const get = await fetch(`${server.url}/trpc/channel.broadcast`, {
      headers: { authorization: `Bearer ${await server.token(w.supplierClaims)}` },
    });
    expect(get.status).toBe(405);
    const huge = JSON.stringify({
      json: { channelName: w.name, event: "message.posted", payload: { text: "h".repeat(400_000) } },
    });
    const tooLarge = await rawBroadcast(w, { body: huge, headers: { "content-type": "application/json" } });
    expect(tooLarge.status).toBe(413);
    await expectNothingWritten(w);
  });
});

describe("raw WebSocket frames", () => {
  it("garbage frames are answered with errors; the server keeps serving everyone else", async () => {
    const w = await watchedChannel();
    const wsUrl = `${server.url.replace(/^http/, "ws")}/trpc`;
    const send = (url: string, frames: Array<string | Buffer>) =>
      new Promise<{ replies: string[]; closeCode: number | undefined }>((resolve) => {
        const ws = new WebSocket(url);
        const replies: string[] = [];
        ws.on("open", () => {
          for (const frame of frames) ws.send(frame);
        });
        ws.on("message", (data) => {
          replies.push(String(data));
          if (replies.length >= frames.length) ws.close();
        });
        ws.on("close", (code) => resolve({ replies, closeCode: code }));
        ws.on("error", () => {});
      });

    const garbage = await send(wsUrl, ["garbage", '{"id":1,"method":"subscription","params":{}}']);
    expect(garbage.replies.length).toBeGreaterThanOrEqual(1);
    expect(garbage.replies.every((r) => JSON.parse(r).error !== undefined)).toBe(true);

    const badParams = await send(`${wsUrl}?connectionParams=1`, [
      '{"method":"connectionParams","data":{"token":{"a":1}}}',
    ]);
    expect(JSON.parse(badParams.replies[0]!).error.json.data.code).toBe("PARSE_ERROR");

    // A hostile input over the socket is refused for that call (its id answered), not silently dropped.
    const token = await server.token(w.supplierClaims);
    const answer = await new Promise<{ id: unknown; error: { json: { data: { code: string } } } }>(
      (resolve) => {
        const ws = new WebSocket(`${wsUrl}?connectionParams=1`);
        ws.on("open", () => {
          ws.send(JSON.stringify({ method: "connectionParams", data: { token } }));
          ws.send(
            `{"id":7,"method":"subscription","params":{"path":"channel.events","input":{"json":{"channelName":"${w.name}","__proto__":{"admin":true}}}}}`,
          );
        });
        ws.on("message", (data) => {
          resolve(JSON.parse(String(data)));
          ws.close();
        });
      },
    );
    expect(answer.id).toBe(7);
    expect(answer.error.json.data.code).toBe("BAD_REQUEST");

    // A frame far over the limit closes that socket with 1009 (message too big).
    const oversized = await send(wsUrl, [Buffer.alloc(400_000, 97)]);
    expect(oversized.closeCode).toBe(1009);

    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await expectNothingWritten(w);
  });
});

describe("sanitization", () => {
  const cases: Array<[input: string, stored: string]> = [
    ["<script>alert(1)</script>Hello", "Hello"],
    ["see <img src=x onerror=alert(1)> here", "see  here"],
    ['<a href="javascript:alert(1)">Click</a>', "Click"],
    ["JaVaScRiPt:alert(1)", "alert(1)"],
    ["javascript :alert(document.cookie)", "alert(document.cookie)"],
    ["<b>Ceremony</b> at 3", "Ceremony at 3"],
    ["<style>body{display:none}</style>Hi", "Hi"],
    ["I <3 you <script>alert(1)</script> & more", "I <3 you  & more"],
    // Ordinary text stays readable.
    ["Tom & Jerry <3", "Tom & Jerry <3"],
    ["x < y > z, \"quoted\" and 'single'", "x < y > z, \"quoted\" and 'single'"],
    ["Fish & Chips for 2 > 1 &amp; more", "Fish & Chips for 2 > 1 &amp; more"],
  ];
  const hostile = [
    "<scr<script>ipt>alert(1)</script>ok",
    "<<b>img src=x onerror=alert(1)>>tail",
    "a\u0000b\u0007c<iframe src=javascript:alert(1)>",
  ];

  /** The invariants every stored and delivered text meets, whatever came in. */
  function expectSafe(value: string) {
    expect(value).not.toMatch(/<[A-Za-z!/?]/);
    expect(value).not.toMatch(/(?:java|vb)script\s*:/i);
    const control = [...value].filter((ch) => {
      const code = ch.charCodeAt(0);
      return (code < 0x20 && ch !== "\t" && ch !== "\n" && ch !== "\r") || code === 0x7f;
    });
    expect(control).toEqual([]);
  }

  it("strips markup and script URLs from stored and delivered text, and keeps ordinary text as typed", async () => {
    const w = await watchedChannel();
    for (const [input] of cases) {
      await w.supplier.trpc.channel.broadcast.mutate({
        channelName: w.name,
        event: "message.posted",
        payload: { text: input },
      });
    }
    for (const input of hostile) {
      await w.supplier.trpc.channel.broadcast.mutate({
        channelName: w.name,
        event: "message.posted",
        payload: { text: input },
      });
    }
    const total = cases.length + hostile.length;
    await w.stream.until(total);
    const delivered = w.stream.messages().map(text);
    const stored = (await w.couple.trpc.queue.pending.query()).slice(1).map(text);
    const resubscribed = events(w.couple, w.name, w.opening.id);
    await resubscribed.until(total);
    const replayed = resubscribed.messages().map(text);

    expect(delivered.slice(0, cases.length)).toEqual(cases.map(([, out]) => out));
    expect(stored).toEqual(delivered);
    expect(replayed).toEqual(delivered);
    for (const value of delivered) expectSafe(value);
    expect(delivered.slice(cases.length).join(" ")).not.toMatch(/onerror\s*=\s*alert/i);
    resubscribed.unsubscribe();
  });

  it("sanitizes every text field of every event type", async () => {
    const w = await watchedChannel();
    const attack =
      '<img src=x onerror=alert(1)>Dinner <script>steal()</script>"at" 8 & <a href="javascript:x()">late</a>';
    const clean = 'Dinner "at" 8 & late';
    await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "timeline.updated",
      payload: { itemId: "dinner", title: attack, note: attack, startsAt: "2027-06-12T18:00:00+02:00" },
    });
    await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "venue.changed",
      payload: { venueId: "v1", change: attack, note: attack },
    });
    await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "form.response",
      payload: {
        formId: "f1",
        submissionId: "s1",
        fields: { diet: attack, guests: 2, tags: [attack, "plain"] },
      },
    });
    await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "journey.milestone",
      payload: { milestoneId: "m1", status: "done", note: attack },
    });
    await w.stream.until(4);
    expect(w.stream.messages().map((m) => m.payload)).toEqual([
      { itemId: "dinner", title: clean, note: clean, startsAt: "2027-06-12T18:00:00+02:00" },
      { venueId: "v1", change: clean, note: clean },
      { formId: "f1", submissionId: "s1", fields: { diet: clean, guests: 2, tags: [clean, "plain"] } },
      { milestoneId: "m1", status: "done", note: clean },
    ]);
  });
});

describe("idempotency keys", () => {
  it("a retried broadcast is stored and delivered once, with the same id and seq", async () => {
    const w = await watchedChannel();
    const input = {
      channelName: w.name,
      event: "message.posted",
      payload: { text: "Photographer arrives 13:00" },
      idempotencyKey: "retry-me-1",
    } as const;
    const first = await w.supplier.trpc.channel.broadcast.mutate(input);
    const second = await w.supplier.trpc.channel.broadcast.mutate(input);
    // A retry that changed its mind about the text still returns what was stored.
    const third = await w.supplier.trpc.channel.broadcast.mutate({ ...input, payload: { text: "changed" } });
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () =>
        w.supplier.trpc.channel.broadcast.mutate({ ...input, idempotencyKey: "retry-me-2" }),
      ),
    );
    expect(first).toEqual({ id: expect.any(String), seq: w.opening.seq + 1, duplicate: false });
    expect(second).toEqual({ ...first, duplicate: true });
    expect(third).toEqual({ ...first, duplicate: true });
    expect(new Set(concurrent.map((r) => r.id)).size).toBe(1);
    expect(new Set(concurrent.map((r) => r.seq))).toEqual(new Set([w.opening.seq + 2]));
    expect(concurrent.filter((r) => !r.duplicate)).toHaveLength(1);

    const fence = await w.supplier.trpc.channel.broadcast.mutate({
      channelName: w.name,
      event: "message.posted",
      payload: { text: "fence" },
    });
    expect(fence.seq).toBe(w.opening.seq + 3);
    await w.stream.until(3);
    expect(w.stream.messages().map((m) => [m.seq, text(m)])).toEqual([
      [first.seq, "Photographer arrives 13:00"],
      [concurrent[0]!.seq, "Photographer arrives 13:00"],
      [fence.seq, "fence"],
    ]);
    expect((await w.couple.trpc.queue.pending.query()).map(text)).toEqual([
      "opening",
      "Photographer arrives 13:00",
      "Photographer arrives 13:00",
      "fence",
    ]);
  });

  it("the same key on another channel is another message", async () => {
    const a = await watchedChannel();
    const b = await watchedChannel();
    const send = (name: string, client: ChannelsClient) =>
      client.trpc.channel.broadcast.mutate({
        channelName: name,
        event: "message.posted",
        payload: { text: "same key" },
        idempotencyKey: "shared-key",
      });
    const onA = await send(a.name, a.supplier);
    const onB = await send(b.name, b.supplier);
    expect(onA.duplicate).toBe(false);
    expect(onB.duplicate).toBe(false);
    expect(onA.id).not.toBe(onB.id);
  });
});
