import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { type AddressInfo, isIP } from "node:net";
import {
  type HostResolver,
  signWebhook,
  systemResolver,
  verifyWebhookSignature,
  type WebhookKey,
} from "@wedsync/channels";
import { type ChannelsClient, errorCode } from "@wedsync/client";
import type { AuditRow } from "@wedsync/db";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { redisUrlForTests } from "../../../packages/bus/test/redis-server.ts";
import { postgresUrlForTests } from "../../../packages/db/test/fresh-postgres.ts";
import {
  codeOf,
  events,
  eventually,
  type InstancePair,
  primeLive,
  randomSecret,
  startInstancePair,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

const INBOUND_SECRET = randomSecret(48);
/** Named inbound keys beside the single secret (key id "default"), as during a rotation. */
const KEY2 = { id: "k2", secret: randomSecret(48) };
const KEY1 = { id: "k1", secret: randomSecret(48) };
/** Short retries so a receiver that fails twice gets the message within a second. */
const WEBHOOK_ENV = {
  CHANNELS_WEBHOOK_SECRET: INBOUND_SECRET,
  CHANNELS_WEBHOOK_SECRETS: `${KEY2.id}:${KEY2.secret},${KEY1.id}:${KEY1.secret}`,
  // The receivers below listen on 127.0.0.1; the default policy is tested on a server of its own.
  CHANNELS_WEBHOOK_ALLOW_PRIVATE: "true",
  CHANNELS_WEBHOOK_RETRY_BASE_MS: "50",
  // Longer than any test: deliveries must come from the broadcast waking the worker, retries from its
  // wake-up for the earliest due row, not from looking every so often.
  CHANNELS_WEBHOOK_POLL_MS: "600000",
  CHANNELS_WEBHOOK_MAX_ATTEMPTS: "4",
  CHANNELS_WEBHOOK_TIMEOUT_MS: "2000",
};

// -----------------------------------------------------------------------------------------------
// A local HTTP receiver

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

interface Receiver {
  url: string;
  requests: Received[];
  /** Bodies parsed as JSON. */
  messages(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Answers each request with the next status of `statuses` (the last one repeats); "hang" never answers. */
async function startReceiver(statuses: Array<number | "hang"> = [200]): Promise<Receiver> {
  const requests: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const status = statuses[Math.min(requests.length, statuses.length - 1)]!;
      requests.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        status: status === "hang" ? 0 : status,
      });
      if (status === "hang") return;
      res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "thanks" : "nope");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/wedsync`,
    requests,
    messages: () => requests.map((r) => JSON.parse(r.body) as Record<string, unknown>),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const receivers: Receiver[] = [];
async function receiver(statuses?: Array<number | "hang">) {
  const r = await startReceiver(statuses);
  receivers.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

// -----------------------------------------------------------------------------------------------
// Helpers on a running server

function inbound(server: TestServer) {
  return async (
    body: unknown,
    options: {
      secret?: string | WebhookKey;
      t?: number;
      header?: string | null;
      raw?: string | Buffer;
    } = {},
  ) => {
    const raw = options.raw ?? JSON.stringify(body);
    const header =
      options.header === undefined
        ? signWebhook(options.secret ?? INBOUND_SECRET, raw, options.t)
        : options.header;
    const response = await fetch(`${server.url}/webhooks/inbound`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(header === null ? {} : { "x-wedsync-signature": header }),
      },
      body: raw,
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      headers: response.headers,
    };
  };
}

async function newestAudit(server: TestServer, match: (row: AuditRow) => boolean): Promise<AuditRow> {
  await server.instance.services.audit.flush();
  const rows = await server.instance.services.serviceStore.readAudit({ limit: 200 });
  const row = rows.find(match);
  if (!row) throw new Error(`no matching audit row among the newest ${rows.length}`);
  return row;
}

/** Name resolution for a test server: names in `records` (which a test may change) resolve as listed, others as usual. */
function testDns(records: Record<string, string[]>): HostResolver {
  return async (hostname) => {
    const addresses = records[hostname];
    if (!addresses) return systemResolver(hostname);
    return addresses.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
  };
}

async function authFailures(server: TestServer): Promise<number> {
  const metric = await server.instance.services.metrics.authFailures.get();
  return metric.values[0]?.value ?? 0;
}

async function formChannel(server: TestServer) {
  const creatorId = uid("creator");
  const creator = server.client({ sub: creatorId, role: "supplier", suppliers: [uid("s")] });
  const form = uid("f");
  const sub = uid("sub");
  const channel = await creator.trpc.channel.create.mutate({
    scope: "form",
    entity: "response",
    entityId: `${form}:${sub}`,
  });
  return { creator, creatorId, form, sub, channelName: channel.name };
}

const formResponse = (
  channelName: string,
  form: string,
  sub: string,
  fields: Record<string, unknown> = { guests: 2 },
) => ({
  channelName,
  event: "form.response",
  payload: { formId: form, submissionId: sub, fields },
});

async function dashboard(server: TestServer) {
  const s = uid("s");
  const ownerId = uid("owner");
  const owner = server.client({ sub: ownerId, role: "supplier", suppliers: [s] });
  const channelName = (
    await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
  ).name;
  return { s, owner, ownerId, channelName };
}

const say = (client: ChannelsClient, channelName: string, body: string) =>
  client.trpc.channel.broadcast.mutate({ channelName, event: "message.posted", payload: { text: body } });

const outbox = (server: TestServer, webhookId: string) =>
  server.instance.services.serviceStore.listWebhookOutbox(webhookId);

// -----------------------------------------------------------------------------------------------

describe("webhooks", () => {
  let server: TestServer;
  let post: ReturnType<typeof inbound>;

  beforeAll(async () => {
    server = await startTestServer({
      env: WEBHOOK_ENV,
      resolveHost: testDns({ "receiver.test": ["127.0.0.1"] }),
    });
    post = inbound(server);
  });

  afterAll(async () => {
    await server?.stop();
  });

  const lastSeq = async (channelName: string) =>
    (await server.instance.services.serviceStore.findChannel(channelName))?.lastSeq;

  describe("POST /webhooks/inbound", () => {
    it("a signed form response is stored, delivered live and audited, from webhook:inbound", async () => {
      const { creator, channelName, form, sub } = await formChannel(server);
      const stream = events(creator, channelName);
      await primeLive(stream, (i) =>
        creator.trpc.channel.broadcast.mutate({
          channelName,
          event: "form.response",
          payload: { formId: form, submissionId: sub, fields: { probe: i } },
        }),
      );
      const before = await lastSeq(channelName);

      const response = await post(
        formResponse(channelName, form, sub, { guests: 2, note: "<b>vegan</b> x2" }),
      );
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ id: expect.any(String), seq: before! + 1, duplicate: false });

      const items = await stream.untilMatch(
        (all) => all.some(({ data }) => data.type === "message" && data.senderId === "webhook:inbound"),
        "the webhook's message",
      );
      const message = items
        .map(({ data }) => data)
        .find((d) => d.type === "message" && d.senderId === "webhook:inbound");
      expect(message).toMatchObject({
        id: response.body.id,
        seq: before! + 1,
        event: "form.response",
        payload: { formId: form, submissionId: sub, fields: { guests: 2, note: "vegan x2" } },
      });
      const audit = await newestAudit(
        server,
        (r) => r.action === "broadcast" && r.channelName === channelName,
      );
      expect(audit).toMatchObject({ actorId: "webhook:inbound", outcome: "ok" });
    });

    it("a journey milestone accepts webhooks too", async () => {
      const coupleId = uid("c");
      const couple = server.client({ sub: uid("couple"), role: "couple", couples: [coupleId] });
      const milestone = uid("m");
      const { name } = await couple.trpc.channel.create.mutate({
        scope: "journey",
        entity: "milestone",
        entityId: `${coupleId}:${milestone}`,
      });
      const response = await post({
        channelName: name,
        event: "journey.milestone",
        payload: { milestoneId: milestone, status: "done" },
      });
      expect(response.status).toBe(200);
      const [stored] = await couple.trpc.channel.subscribe
        .mutate({
          channelName: name,
          lastMessageId: `${(await server.instance.services.serviceStore.findChannel(name))!.id}:0`,
        })
        .then((r) => r.missed);
      expect(stored).toMatchObject({ senderId: "webhook:inbound", payload: { status: "done" } });
    });

    it("refuses a forged signature: 401, nothing stored, audited, counted", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const failures = await authFailures(server);
      const response = await post(formResponse(channelName, form, sub), { secret: randomSecret(48) });
      expect(response.status).toBe(401);
      expect(response.body).toMatchObject({ error: "UNAUTHORIZED", message: "signature does not match" });
      expect(await lastSeq(channelName)).toBe(0);
      expect(await authFailures(server)).toBe(failures + 1);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        outcome: "denied",
        reason: "signature mismatch",
        actorId: null,
        detail: { status: 401 },
      });
    });

    it("refuses a body changed after signing", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const raw = JSON.stringify(formResponse(channelName, form, sub, { guests: 2 }));
      const header = signWebhook(INBOUND_SECRET, raw);
      const tampered = raw.replace('"guests":2', '"guests":9');
      expect((await post(undefined, { raw: tampered, header })).status).toBe(401);
      expect(await lastSeq(channelName)).toBe(0);
    });

    it("refuses stale and future timestamps (more than 5 minutes away)", async () => {
      const { channelName, form, sub } = await formChannel(server);
      for (const t of [nowSeconds() - 301, nowSeconds() - 3_600, nowSeconds() + 400]) {
        const response = await post(formResponse(channelName, form, sub), { t });
        expect(response.status).toBe(401);
        expect(String(response.body.message)).toMatch(/more than 300 s away/);
      }
      expect(await lastSeq(channelName)).toBe(0);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        reason: "signature stale",
      });
      // Four minutes old is still fine.
      expect((await post(formResponse(channelName, form, sub), { t: nowSeconds() - 240 })).status).toBe(200);
    });

    it("refuses a replayed signature with 409; the message is stored once", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const raw = JSON.stringify(formResponse(channelName, form, sub));
      const header = signWebhook(INBOUND_SECRET, raw);
      const failures = await authFailures(server);
      expect((await post(undefined, { raw, header })).status).toBe(200);
      const replay = await post(undefined, { raw, header });
      expect(replay.status).toBe(409);
      expect(replay.body).toMatchObject({ error: "CONFLICT" });
      // Still replayed with the v1 values reordered or padded with a bogus one.
      const [t, v1] = header.split(",");
      const padded = `${t},v1=${"0".repeat(64)},${v1}`;
      expect((await post(undefined, { raw, header: padded })).status).toBe(409);
      expect(await lastSeq(channelName)).toBe(1);
      expect(await authFailures(server)).toBe(failures + 2);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        outcome: "denied",
        reason: "signature replayed",
      });
    });

    it("an idempotencyKey makes a re-signed retry return the stored message", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const body = { ...formResponse(channelName, form, sub), idempotencyKey: "submission-1" };
      const t = nowSeconds();
      const first = await post(body, { t });
      // Signed anew: another timestamp, so another signature.
      const retry = await post(body, { t: t - 1 });
      expect(first.status).toBe(200);
      expect(retry).toMatchObject({ status: 200, body: { id: first.body.id, seq: 1, duplicate: true } });
      expect(await lastSeq(channelName)).toBe(1);
    });

    it("refuses a missing or malformed signature header with 401", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const missing = await post(formResponse(channelName, form, sub), { header: null });
      expect(missing.status).toBe(401);
      expect(missing.body.message).toMatch(/missing/);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        reason: "signature missing",
      });
      for (const header of ["v1=abc", `t=${nowSeconds()}`, "garbage"]) {
        expect((await post(formResponse(channelName, form, sub), { header })).status).toBe(401);
      }
      expect(await lastSeq(channelName)).toBe(0);
    });

    it("rotation: every configured key verifies without kid=; with kid= only the named key does", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const signers = [
        KEY2,
        KEY1,
        { id: "default", secret: INBOUND_SECRET },
        KEY2.secret,
        KEY1.secret,
        INBOUND_SECRET,
      ];
      // A different body each time: one key signing one body in one second is one signature (a replay).
      for (const [n, secret] of signers.entries()) {
        const response = await post(formResponse(channelName, form, sub, { n }), { secret });
        expect(response.status, typeof secret === "string" ? "no kid" : `kid=${secret.id}`).toBe(200);
      }
      // k1's secret under k2's name: k1 would match, but the sender said k2.
      const failures = await authFailures(server);
      const misnamed = await post(formResponse(channelName, form, sub, { n: 99 }), {
        secret: { id: KEY2.id, secret: KEY1.secret },
      });
      expect(misnamed).toMatchObject({ status: 401, body: { message: "signature does not match" } });
      expect(await lastSeq(channelName)).toBe(6);
      expect(await authFailures(server)).toBe(failures + 1);
    });

    it("an unknown kid is 401: nothing stored, audited, counted; a retired key's kid becomes unknown", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const body = formResponse(channelName, form, sub);
      const failures = await authFailures(server);
      const response = await post(body, { secret: { id: "k3", secret: KEY2.secret } });
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: "UNAUTHORIZED", message: "no key with kid=k3 is configured" });
      expect(await lastSeq(channelName)).toBe(0);
      expect(await authFailures(server)).toBe(failures + 1);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        outcome: "denied",
        reason: "signature unknown-key",
        actorId: null,
        detail: { status: 401 },
      });

      // The operator drops k1 from CHANNELS_WEBHOOK_SECRETS (a restart in real life).
      const { config } = server.instance.services;
      const keys = config.CHANNELS_WEBHOOK_SECRETS;
      config.CHANNELS_WEBHOOK_SECRETS = [KEY2];
      try {
        expect((await post(body, { secret: KEY1 })).body).toMatchObject({
          message: "no key with kid=k1 is configured",
        });
        expect((await post(body, { secret: KEY1.secret })).status).toBe(401);
        expect((await post(body, { secret: KEY2 })).status).toBe(200);
      } finally {
        config.CHANNELS_WEBHOOK_SECRETS = keys;
      }
      expect(await lastSeq(channelName)).toBe(1);
    });

    it("a signature with kid= is accepted once too, with or without its kid", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const raw = JSON.stringify(formResponse(channelName, form, sub));
      const header = signWebhook(KEY2, raw);
      expect((await post(undefined, { raw, header })).status).toBe(200);
      expect((await post(undefined, { raw, header })).status).toBe(409);
      expect((await post(undefined, { raw, header: header.replace(",kid=k2", "") })).status).toBe(409);
      expect(await lastSeq(channelName)).toBe(1);
    });

    it("refuses channels other than form responses and journey milestones with 403", async () => {
      const s = uid("s");
      const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
      const dashboard = (
        await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
      ).name;
      const collaboration = (
        await owner.trpc.channel.create.mutate({ scope: "collaboration", entity: s, entityId: uid("c") })
      ).name;
      for (const channelName of [dashboard, collaboration, `venue:broadcast:${uid("v")}`]) {
        const response = await post({ channelName, event: "message.posted", payload: { text: "hi" } });
        expect(response.status).toBe(403);
        expect(response.body).toMatchObject({ error: "FORBIDDEN" });
      }
      expect(await lastSeq(dashboard)).toBe(0);
      expect(await lastSeq(collaboration)).toBe(0);
      expect(
        await newestAudit(server, (r) => r.action === "broadcast" && r.actorId === "webhook:inbound"),
      ).toMatchObject({ outcome: "denied", reason: "no webhook publish access" });
    });

    it("a channel that does not exist is 404", async () => {
      const name = `form:response:${uid("f")}:${uid("s")}`;
      const response = await post(formResponse(name, "f", "s"));
      expect(response.status).toBe(404);
      expect(await server.instance.services.serviceStore.findChannel(name)).toBeUndefined();
    });

    it("refuses malformed bodies with 400 and writes nothing", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const cases: Array<{ raw: string | Buffer; why: RegExp }> = [
        { raw: "{not json", why: /not UTF-8 JSON/ },
        { raw: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), why: /not UTF-8 JSON/ },
        { raw: JSON.stringify({ channelName, event: "no.such.event", payload: {} }), why: /event/ },
        {
          raw: JSON.stringify({
            channelName: "not-a-channel",
            event: "message.posted",
            payload: { text: "x" },
          }),
          why: /channelName/,
        },
        {
          raw: JSON.stringify({
            ...formResponse(channelName, form, sub),
            payload: { formId: form, submissionId: sub, fields: {}, extra: 1 },
          }),
          why: /extra/,
        },
        {
          raw: `{"channelName":"${channelName}","event":"form.response","payload":{"formId":"${form}","submissionId":"${sub}","fields":{"__proto__":{"admin":true}}}}`,
          why: /__proto__/,
        },
        {
          raw: JSON.stringify({
            ...formResponse(channelName, form, sub),
            payload: {
              formId: form,
              submissionId: sub,
              fields: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`f${i}`, "x".repeat(9_000)])),
            },
          }),
          why: /limit is 32768/,
        },
      ];
      for (const { raw, why } of cases) {
        const response = await post(undefined, { raw });
        expect(response.status, String(raw).slice(0, 60)).toBe(400);
        expect(JSON.stringify(response.body)).toMatch(why);
      }
      expect(await lastSeq(channelName)).toBe(0);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        outcome: "denied",
        actorId: "webhook:inbound",
        detail: { status: 400 },
      });
    });

    it("refuses a body over 4 x CHANNELS_MAX_PAYLOAD_BYTES with 413", async () => {
      const { channelName, form, sub } = await formChannel(server);
      const huge = JSON.stringify({ ...formResponse(channelName, form, sub), pad: "x".repeat(140_000) });
      const response = await post(undefined, { raw: huge });
      expect(response.status).toBe(413);
      expect(response.body).toMatchObject({ error: "PAYLOAD_TOO_LARGE" });
      expect(await lastSeq(channelName)).toBe(0);
      expect(await newestAudit(server, (r) => r.action === "webhook.inbound")).toMatchObject({
        reason: "body too large",
        detail: { status: 413 },
      });
      // The server is still fine.
      expect((await post(formResponse(channelName, form, sub))).status).toBe(200);
    });

    it("answers 405 to other methods and 503 while no secret is configured", async () => {
      const get = await fetch(`${server.url}/webhooks/inbound`);
      expect(get.status).toBe(405);
      const { config } = server.instance.services;
      const { CHANNELS_WEBHOOK_SECRET, CHANNELS_WEBHOOK_SECRETS } = config;
      config.CHANNELS_WEBHOOK_SECRET = undefined;
      config.CHANNELS_WEBHOOK_SECRETS = undefined;
      try {
        const { channelName, form, sub } = await formChannel(server);
        const response = await post(formResponse(channelName, form, sub));
        expect(response.status).toBe(503);
        expect(await lastSeq(channelName)).toBe(0);
      } finally {
        Object.assign(config, { CHANNELS_WEBHOOK_SECRET, CHANNELS_WEBHOOK_SECRETS });
      }
    });
  });

  describe("channel.webhooks (outbound)", () => {
    it("a broadcast arrives at the receiver, signed with the webhook's secret", async () => {
      const { owner, ownerId, channelName } = await dashboard(server);
      const r = await receiver();
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      expect(hook).toEqual({
        id: expect.any(String),
        url: r.url,
        secret: expect.stringMatching(/^whsec_/),
        createdAt: expect.any(Date),
      });

      const sent = await say(owner, channelName, "<i>first</i> dance at 9");
      await eventually(
        async () => r.requests.length,
        (n) => n >= 1,
        "a delivery",
      );
      const [request] = r.requests;
      expect(request!.headers["content-type"]).toBe("application/json");
      expect(request!.headers["x-wedsync-webhook-id"]).toBe(hook.id);
      const check = verifyWebhookSignature({
        header: request!.headers["x-wedsync-signature"],
        body: request!.body,
        secrets: hook.secret,
      });
      expect(check.ok).toBe(true);
      expect(JSON.parse(request!.body)).toEqual({
        id: sent.id,
        channel: channelName,
        seq: sent.seq,
        event: "message.posted",
        payload: { text: "first dance at 9" },
        senderId: ownerId,
        sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      await eventually(
        () => outbox(server, hook.id),
        (rows) => rows[0]?.deliveredAt instanceof Date,
        "delivered mark",
      );
      expect((await outbox(server, hook.id))[0]).toMatchObject({
        attempts: 1,
        nextAttemptAt: null,
        lastError: null,
      });
      expect(
        await newestAudit(
          server,
          (row) => row.action === "webhook.deliver" && row.channelName === channelName,
        ),
      ).toMatchObject({
        outcome: "ok",
        actorId: `webhook:${hook.id}`,
        detail: { webhookId: hook.id, seq: sent.seq, attempt: 1, status: 200 },
      });
    });

    it("an owner-chosen secret signs; several webhooks each get their copy", async () => {
      const { owner, channelName } = await dashboard(server);
      const [a, b] = [await receiver(), await receiver()];
      const secret = "a-secret-the-owner-chose-123";
      const hookA = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: a.url, secret });
      expect(hookA.secret).toBe(secret);
      const hookB = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: b.url });
      for (let i = 0; i < 3; i++) await say(owner, channelName, `m${i}`);
      await eventually(
        async () => [a.requests.length, b.requests.length],
        ([x, y]) => x! >= 3 && y! >= 3,
        "3 + 3 deliveries",
      );
      for (const [r, key] of [
        [a, secret],
        [b, hookB.secret],
      ] as const) {
        expect(
          r
            .messages()
            .map((m) => m.seq)
            .sort(),
        ).toEqual([1, 2, 3]);
        for (const request of r.requests) {
          expect(
            verifyWebhookSignature({
              header: request.headers["x-wedsync-signature"],
              body: request.body,
              secrets: key,
            }).ok,
          ).toBe(true);
        }
      }
      const listed = await owner.trpc.channel.webhooks.list.query({ channelName });
      expect(listed.map((w) => w.id)).toEqual([hookA.id, hookB.id]);
      expect(JSON.stringify(listed)).not.toContain(secret);
    });

    it("a receiver that fails twice gets the message once, on the third attempt", async () => {
      const { owner, channelName } = await dashboard(server);
      const r = await receiver([500, 503, 200]);
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      const sent = await say(owner, channelName, "retry me");
      await eventually(
        () => outbox(server, hook.id),
        (rows) => rows[0]?.deliveredAt instanceof Date,
        "delivered after retries",
      );
      await sleep(400); // nothing more arrives once delivered
      expect(r.requests.map((q) => q.status)).toEqual([500, 503, 200]);
      expect(r.requests.map((q) => q.headers["x-wedsync-delivery-attempt"])).toEqual(["1", "2", "3"]);
      expect(new Set(r.messages().map((m) => m.id))).toEqual(new Set([sent.id]));
      expect((await outbox(server, hook.id))[0]).toMatchObject({
        attempts: 3,
        lastError: null,
        nextAttemptAt: null,
      });

      await server.instance.services.audit.flush();
      const audit = (
        await server.instance.services.serviceStore.readAudit({ limit: 50, channelName })
      ).filter((row) => row.action === "webhook.deliver");
      expect(audit.map((row) => [row.outcome, row.detail.attempt])).toEqual([
        ["ok", 3],
        ["error", 2],
        ["error", 1],
      ]);
      expect(audit[2]?.reason).toMatch(/^attempt 1 failed: HTTP 500; retry in \d+ s$/);
    });

    it("a round the database fails is tried again a second later, not after the poll ceiling", async () => {
      const { owner, channelName } = await dashboard(server);
      const r = await receiver();
      await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      // The worker's next claim fails as it would while the database is unreachable; the one after works.
      const claim = vi
        .spyOn(server.instance.services.serviceStore, "claimWebhookDeliveries")
        .mockRejectedValueOnce(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
      try {
        const sent = await say(owner, channelName, "sent during an outage");
        // CHANNELS_WEBHOOK_POLL_MS is 10 minutes here: only the retry after the failed round delivers.
        await eventually(
          async () => r.messages().map((m) => m.id),
          (ids) => ids.includes(sent.id),
          "the delivery after the failed round",
          5_000,
        );
        expect(claim.mock.settledResults[0]?.type).toBe("rejected");
      } finally {
        claim.mockRestore();
      }
    });

    it("gives up after CHANNELS_WEBHOOK_MAX_ATTEMPTS, and a receiver that does not answer counts as a failure", async () => {
      const { owner, channelName } = await dashboard(server);
      const down = await receiver([500]);
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: down.url });
      await say(owner, channelName, "never arrives");
      await eventually(
        () => outbox(server, hook.id),
        (rows) => rows[0]?.nextAttemptAt === null,
        "given up",
        15_000,
      );
      await sleep(300);
      expect(down.requests).toHaveLength(4);
      expect((await outbox(server, hook.id))[0]).toMatchObject({
        attempts: 4,
        deliveredAt: null,
        lastError: "HTTP 500",
      });
      expect(
        await newestAudit(
          server,
          (row) => row.action === "webhook.deliver" && row.channelName === channelName,
        ),
      ).toMatchObject({ outcome: "error", reason: "gave up after 4 attempts: HTTP 500" });

      const silent = await receiver(["hang", 200]);
      const other = await dashboard(server);
      const slowHook = await other.owner.trpc.channel.webhooks.add.mutate({
        channelName: other.channelName,
        url: silent.url,
      });
      await say(other.owner, other.channelName, "slow");
      await eventually(
        () => outbox(server, slowHook.id),
        (rows) => rows[0]?.deliveredAt instanceof Date,
        "delivered after a timeout",
        15_000,
      );
      expect(silent.requests).toHaveLength(2);
      await server.instance.services.audit.flush();
      const audit = await server.instance.services.serviceStore.readAudit({
        limit: 20,
        channelName: other.channelName,
      });
      expect(audit.find((row) => row.outcome === "error")?.reason).toMatch(/no answer within 2000 ms/);
    });

    it("remove stops deliveries, including pending retries", async () => {
      const { owner, channelName } = await dashboard(server);
      const r = await receiver([500]);
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      await say(owner, channelName, "before remove");
      await eventually(
        async () => r.requests.length,
        (n) => n >= 1,
        "a first attempt",
      );
      expect(await owner.trpc.channel.webhooks.remove.mutate({ channelName, id: hook.id })).toEqual({
        removed: true,
      });
      const seen = r.requests.length;
      await say(owner, channelName, "after remove");
      await sleep(600);
      expect(r.requests.length).toBeLessThanOrEqual(seen + 1); // at most one attempt that was already in flight
      expect(r.messages().every((m) => (m.payload as { text: string }).text === "before remove")).toBe(true);
      expect(await outbox(server, hook.id)).toEqual([]);
      expect(await owner.trpc.channel.webhooks.remove.mutate({ channelName, id: hook.id })).toEqual({
        removed: false,
      });
      expect(await owner.trpc.channel.webhooks.list.query({ channelName })).toEqual([]);
      expect(
        await newestAudit(
          server,
          (row) => row.action === "webhook.remove" && row.channelName === channelName,
        ),
      ).toMatchObject({ outcome: "ok", reason: "no such webhook" });
    });

    it("a channel takes at most 10 webhooks: concurrent adds past it are PRECONDITION_FAILED and audited", async () => {
      const { owner, channelName } = await dashboard(server);
      const adds = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          owner.trpc.channel.webhooks.add.mutate({ channelName, url: `https://h${i}.example/in` }),
        ),
      );
      expect(adds.filter((a) => a.status === "fulfilled")).toHaveLength(10);
      const refused = adds.flatMap((a) => (a.status === "rejected" ? [a.reason] : []));
      expect(refused.map((reason) => (reason as { data?: { code?: string } }).data?.code)).toEqual([
        "PRECONDITION_FAILED",
        "PRECONDITION_FAILED",
      ]);
      expect(await owner.trpc.channel.webhooks.list.query({ channelName })).toHaveLength(10);
      await server.instance.services.audit.flush();
      const denied = await server.instance.services.serviceStore.readAudit({ limit: 50, channelName });
      expect(denied.filter((row) => row.reason === "webhook limit")).toHaveLength(2);
    });

    it("only owning members manage webhooks: others get FORBIDDEN; a missing channel is NOT_FOUND for owners", async () => {
      const { s, owner, channelName } = await dashboard(server);
      const hook = await owner.trpc.channel.webhooks.add.mutate({
        channelName,
        url: "http://127.0.0.1:9/never",
      });
      const outsider = server.client({ sub: uid("outsider"), role: "supplier", suppliers: [uid("s")] });
      const granteeId = uid("grantee");
      const grantee = server.client({ sub: granteeId, role: "couple", couples: [uid("c")] });
      await owner.trpc.channel.grant.mutate({ channelName, userId: granteeId });
      const admin = server.client({ sub: uid("admin"), role: "admin", suppliers: [s] });
      for (const client of [outsider, grantee, admin]) {
        expect(
          await codeOf(
            client.trpc.channel.webhooks.add.mutate({ channelName, url: "https://evil.example/" }),
          ),
        ).toBe("FORBIDDEN");
        expect(await codeOf(client.trpc.channel.webhooks.remove.mutate({ channelName, id: hook.id }))).toBe(
          "FORBIDDEN",
        );
        expect(await codeOf(client.trpc.channel.webhooks.list.query({ channelName }))).toBe("FORBIDDEN");
      }
      expect((await owner.trpc.channel.webhooks.list.query({ channelName })).map((w) => w.id)).toEqual([
        hook.id,
      ]);
      expect(
        await newestAudit(
          server,
          (row) =>
            row.action === "webhook.add" && row.channelName === channelName && row.outcome === "denied",
        ),
      ).toMatchObject({ reason: "not an owner" });
      const missing = `collaboration:${s}:${uid("c")}`;
      expect(
        await codeOf(
          owner.trpc.channel.webhooks.add.mutate({ channelName: missing, url: "https://a.example/" }),
        ),
      ).toBe("NOT_FOUND");
      // A form channel's webhooks belong to its creator.
      const form = await formChannel(server);
      expect(
        await codeOf(
          outsider.trpc.channel.webhooks.add.mutate({
            channelName: form.channelName,
            url: "https://a.example/",
          }),
        ),
      ).toBe("FORBIDDEN");
      const formHook = await form.creator.trpc.channel.webhooks.add.mutate({
        channelName: form.channelName,
        url: "https://a.example/",
      });
      expect(formHook.id).toEqual(expect.any(String));
    });

    it("connects to the address it checked: a name only the server's resolver knows is delivered to", async () => {
      const { owner, channelName } = await dashboard(server);
      const r = await receiver();
      const url = new URL(r.url);
      url.hostname = "receiver.test";
      await owner.trpc.channel.webhooks.add.mutate({ channelName, url: url.href });
      await say(owner, channelName, "pinned");
      await eventually(
        async () => r.requests.length,
        (n) => n >= 1,
        "a delivery to receiver.test",
      );
      expect(r.requests[0]!.headers.host).toBe(url.host);
      expect(r.messages()[0]).toMatchObject({ payload: { text: "pinned" } });
    });

    it("refuses bad URLs, secrets and ids with BAD_REQUEST", async () => {
      const { owner, channelName } = await dashboard(server);
      for (const url of [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://user:password@example.com/hook",
        "not a url",
        "/relative",
        `https://example.com/${"a".repeat(2_100)}`,
      ]) {
        expect(
          await codeOf(owner.trpc.channel.webhooks.add.mutate({ channelName, url })),
          url.slice(0, 40),
        ).toBe("BAD_REQUEST");
      }
      expect(
        await codeOf(
          owner.trpc.channel.webhooks.add.mutate({ channelName, url: "https://a.example/", secret: "short" }),
        ),
      ).toBe("BAD_REQUEST");
      expect(await codeOf(owner.trpc.channel.webhooks.remove.mutate({ channelName, id: "1 or 1=1" }))).toBe(
        "BAD_REQUEST",
      );
      expect(await owner.trpc.channel.webhooks.list.query({ channelName })).toEqual([]);
    });

    it("an inbound webhook's broadcast is delivered to the channel's outbound webhooks", async () => {
      const { creator, channelName, form, sub } = await formChannel(server);
      const r = await receiver();
      await creator.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      expect((await post(formResponse(channelName, form, sub, { rsvp: true }))).status).toBe(200);
      await eventually(
        async () => r.requests.length,
        (n) => n >= 1,
        "the relayed message",
      );
      expect(r.messages()[0]).toMatchObject({
        senderId: "webhook:inbound",
        event: "form.response",
        payload: { fields: { rsvp: true } },
      });
    });

    it("a channel with webhooks still streams to live subscribers as usual", async () => {
      const { s, owner, channelName } = await dashboard(server);
      await owner.trpc.channel.webhooks.add.mutate({ channelName, url: (await receiver()).url });
      const reader = events(
        server.client({ sub: uid("reader"), role: "supplier", suppliers: [s] }),
        channelName,
      );
      await primeLive(reader, (i) => say(owner, channelName, `probe ${i}`));
      await say(owner, channelName, "live too");
      await reader.untilMatch(
        (items) => items.some(({ data }) => data.type === "message" && text(data) === "live too"),
        "live message",
      );
    });
  });
});

// -----------------------------------------------------------------------------------------------
// Outbound targets under the default policy: public addresses only (SSRF).

describe("outbound webhook targets, default policy", () => {
  /** A public address names may resolve to here; never connected to: no message goes to a webhook while it does. */
  const PUBLIC = "93.184.215.14";
  const dns: Record<string, string[]> = {};
  let strict: TestServer;

  beforeAll(async () => {
    strict = await startTestServer({
      env: { ...WEBHOOK_ENV, CHANNELS_WEBHOOK_ALLOW_PRIVATE: "false" },
      resolveHost: testDns(dns),
    });
  });

  afterAll(async () => {
    await strict?.stop();
  });

  const refusalOf = (call: Promise<unknown>) =>
    call.then(
      () => expect.fail("expected channel.webhooks.add to be refused"),
      (error: unknown) => error as Error,
    );

  it("refuses loopback, private, link-local, CGNAT, unique-local, unspecified and names resolving to them: BAD_REQUEST, nothing stored, audited", async () => {
    const { owner, channelName } = await dashboard(strict);
    const r = await receiver();
    const { port } = new URL(r.url);
    const cases: Array<[string, RegExp]> = [
      [
        r.url,
        /^127\.0\.0\.1 is not a public address \(loopback\); webhooks may only reach public addresses$/,
      ],
      ["https://10.1.2.3/hooks", /^10\.1\.2\.3 is not a public address \(private \(RFC 1918\)\)/],
      ["http://192.168.0.10/", /private/],
      [
        "http://169.254.169.254/latest/meta-data/",
        /^169\.254\.169\.254 is not a public address \(link-local\)/,
      ],
      [`http://[::1]:${port}/hooks`, /^::1 is not a public address \(loopback\)/],
      [
        `http://localhost:${port}/hooks`,
        /^localhost resolves to (127\.0\.0\.1|::1), which is not a public address \(loopback\)/,
      ],
      ["http://100.64.0.1/", /carrier-grade NAT/],
      ["http://[fd00::1]/", /unique-local/],
      ["http://[fe80::1]/", /link-local/],
      ["http://0.0.0.0:3001/", /unspecified/],
      ["http://2130706433/", /^127\.0\.0\.1 is not a public address/],
      ["http://[::ffff:10.0.0.1]/", /private/],
    ];
    for (const [url, why] of cases) {
      const refusal = await refusalOf(owner.trpc.channel.webhooks.add.mutate({ channelName, url }));
      expect(errorCode(refusal), url).toBe("BAD_REQUEST");
      expect(refusal.message, url).toMatch(why);
    }
    expect(await owner.trpc.channel.webhooks.list.query({ channelName })).toEqual([]);

    await strict.instance.services.audit.flush();
    const denied = (await strict.instance.services.serviceStore.readAudit({ limit: 50, channelName })).filter(
      (row) => row.action === "webhook.add",
    );
    expect(denied).toHaveLength(cases.length);
    expect(denied.every((row) => row.outcome === "denied" && row.reason === "non-public address")).toBe(true);
    expect(denied[0]?.detail).toEqual({
      origin: "http://[::ffff:a00:1]",
      refusal: expect.stringMatching(/^::ffff:a00:1 is not a public address/),
    });
  });

  it("accepts a public host, and a host that does not resolve yet (each delivery checks again)", async () => {
    dns["hooks.test"] = [PUBLIC];
    const { owner, channelName } = await dashboard(strict);
    for (const url of ["https://hooks.test/in", `https://${PUBLIC}/in`, "https://not-yet.invalid/in"]) {
      expect(await owner.trpc.channel.webhooks.add.mutate({ channelName, url })).toMatchObject({ url });
    }
  });

  it("a host that passed at add time but resolves to a private address at delivery is not delivered", async () => {
    const { owner, channelName } = await dashboard(strict);
    const r = await receiver();
    dns["rebind.test"] = [PUBLIC];
    const url = new URL(r.url);
    url.hostname = "rebind.test";
    const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: url.href });
    dns["rebind.test"] = ["127.0.0.1"];
    await say(owner, channelName, "rebound");
    const [row] = await eventually(
      () => outbox(strict, hook.id),
      (rows) => rows[0]?.nextAttemptAt === null,
      "given up",
      10_000,
    );
    const refusal =
      "rebind.test resolves to 127.0.0.1, which is not a public address (loopback); webhooks may only reach public addresses";
    expect(row).toMatchObject({ attempts: 4, deliveredAt: null, lastError: refusal });
    expect(r.requests).toEqual([]);
    expect(
      await newestAudit(strict, (a) => a.action === "webhook.deliver" && a.channelName === channelName),
    ).toMatchObject({ outcome: "error", reason: `gave up after 4 attempts: ${refusal}` });
  });

  it("webhooks registered while CHANNELS_WEBHOOK_ALLOW_PRIVATE was on are not delivered once it is off", async () => {
    const { owner, channelName } = await dashboard(strict);
    const r = await receiver();
    const { config } = strict.instance.services;
    config.CHANNELS_WEBHOOK_ALLOW_PRIVATE = true;
    let hook: { id: string };
    try {
      hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
    } finally {
      config.CHANNELS_WEBHOOK_ALLOW_PRIVATE = false;
    }
    await say(owner, channelName, "too late");
    await eventually(
      () => outbox(strict, hook.id),
      (rows) => rows[0]?.nextAttemptAt === null,
      "given up",
      10_000,
    );
    expect(r.requests).toEqual([]);
    expect((await outbox(strict, hook.id))[0]?.lastError).toMatch(
      /^127\.0\.0\.1 is not a public address \(loopback\)/,
    );
  });
});

// -----------------------------------------------------------------------------------------------
// Across instances: replay protection and the outbox hold for the cluster, not one process.

const SUITE = "webhooks across two instances: postgres + redis";
const adminUrl = postgresUrlForTests(SUITE);
const redisUrl = redisUrlForTests();

describe.skipIf(!adminUrl || !redisUrl)(SUITE, () => {
  let pair: InstancePair | undefined;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const env = {
      ...WEBHOOK_ENV,
      CHANNELS_JWT_SECRET: randomSecret(),
      CHANNELS_WEBHOOK_POLL_MS: "20",
      CHANNELS_RATE_BROADCASTS_PER_MIN: "10000",
    };
    pair = await startInstancePair({ adminUrl: adminUrl!, redisUrl: redisUrl! }, env, "channels_webhooks");
    ({ a, b } = pair);
  });

  afterAll(async () => {
    await pair?.stop();
  });

  it("a signature accepted by one instance is a replay on the other", async () => {
    const { channelName, form, sub } = await formChannel(a);
    const raw = JSON.stringify(formResponse(channelName, form, sub));
    const header = signWebhook(INBOUND_SECRET, raw);
    expect((await inbound(a)(undefined, { raw, header })).status).toBe(200);
    expect((await inbound(b)(undefined, { raw, header })).status).toBe(409);
    expect((await a.instance.services.serviceStore.findChannel(channelName))?.lastSeq).toBe(1);
  });

  it("with both instances delivering, every message reaches the receiver exactly once", async () => {
    const s = uid("s");
    const owner = a.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
    const other = b.client({ sub: uid("owner2"), role: "supplier", suppliers: [s] });
    const channelName = (
      await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const r = await receiver();
    // Added on b: a's view of the channel predates the webhook, and must still queue its messages.
    await other.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
    const sent = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? other : owner).trpc.channel.broadcast.mutate({
          channelName,
          event: "message.posted",
          payload: { text: `m${i}` },
        }),
      ),
    );
    await eventually(
      async () => r.requests.length,
      (n) => n >= 40,
      "40 deliveries",
      20_000,
    );
    await sleep(300);
    const ids = r.messages().map((m) => m.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids)).toEqual(new Set(sent.map((m) => m.id)));
  });
});
