import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { signWebhook, verifyWebhookSignature } from "@wedsync/channels";
import type { ChannelsClient } from "@wedsync/client";
import type { AuditRow } from "@wedsync/db";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redisUrlForTests } from "../../../packages/bus/test/redis-server.ts";
import {
  createFreshDatabase,
  type FreshPostgres,
  postgresUrlForTests,
} from "../../../packages/db/test/fresh-postgres.ts";
import {
  codeOf,
  events,
  eventually,
  primeLive,
  randomSecret,
  startTestServer,
  type TestServer,
  text,
  uid,
} from "./harness.ts";

const INBOUND_SECRET = randomSecret(48);
/** Short retries so a receiver that fails twice gets the message within a second. */
const WEBHOOK_ENV = {
  CHANNELS_WEBHOOK_SECRET: INBOUND_SECRET,
  CHANNELS_WEBHOOK_RETRY_BASE_MS: "50",
  CHANNELS_WEBHOOK_POLL_MS: "50",
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
    options: { secret?: string; t?: number; header?: string | null; raw?: string | Buffer } = {},
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

// -----------------------------------------------------------------------------------------------

describe("webhooks", () => {
  let server: TestServer;
  let post: ReturnType<typeof inbound>;

  beforeAll(async () => {
    server = await startTestServer({ env: WEBHOOK_ENV });
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
      const secret = config.CHANNELS_WEBHOOK_SECRET;
      config.CHANNELS_WEBHOOK_SECRET = undefined;
      try {
        const { channelName, form, sub } = await formChannel(server);
        const response = await post(formResponse(channelName, form, sub));
        expect(response.status).toBe(503);
        expect(await lastSeq(channelName)).toBe(0);
      } finally {
        config.CHANNELS_WEBHOOK_SECRET = secret;
      }
    });
  });

  describe("channel.webhooks (outbound)", () => {
    async function dashboard() {
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

    async function outbox(webhookId: string) {
      return server.instance.services.serviceStore.listWebhookOutbox(webhookId);
    }

    it("a broadcast arrives at the receiver, signed with the webhook's secret", async () => {
      const { owner, ownerId, channelName } = await dashboard();
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
        () => outbox(hook.id),
        (rows) => rows[0]?.deliveredAt instanceof Date,
        "delivered mark",
      );
      expect((await outbox(hook.id))[0]).toMatchObject({ attempts: 1, nextAttemptAt: null, lastError: null });
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
      const { owner, channelName } = await dashboard();
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
      const { owner, channelName } = await dashboard();
      const r = await receiver([500, 503, 200]);
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: r.url });
      const sent = await say(owner, channelName, "retry me");
      await eventually(
        () => outbox(hook.id),
        (rows) => rows[0]?.deliveredAt instanceof Date,
        "delivered after retries",
      );
      await sleep(400); // nothing more arrives once delivered
      expect(r.requests.map((q) => q.status)).toEqual([500, 503, 200]);
      expect(r.requests.map((q) => q.headers["x-wedsync-delivery-attempt"])).toEqual(["1", "2", "3"]);
      expect(new Set(r.messages().map((m) => m.id))).toEqual(new Set([sent.id]));
      expect((await outbox(hook.id))[0]).toMatchObject({ attempts: 3, lastError: null, nextAttemptAt: null });

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

    it("gives up after CHANNELS_WEBHOOK_MAX_ATTEMPTS, and a receiver that does not answer counts as a failure", async () => {
      const { owner, channelName } = await dashboard();
      const down = await receiver([500]);
      const hook = await owner.trpc.channel.webhooks.add.mutate({ channelName, url: down.url });
      await say(owner, channelName, "never arrives");
      await eventually(
        () => outbox(hook.id),
        (rows) => rows[0]?.nextAttemptAt === null,
        "given up",
        15_000,
      );
      await sleep(300);
      expect(down.requests).toHaveLength(4);
      expect((await outbox(hook.id))[0]).toMatchObject({
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
      const other = await dashboard();
      const slowHook = await other.owner.trpc.channel.webhooks.add.mutate({
        channelName: other.channelName,
        url: silent.url,
      });
      await say(other.owner, other.channelName, "slow");
      await eventually(
        () => outbox(slowHook.id),
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
      const { owner, channelName } = await dashboard();
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
      expect(await outbox(hook.id)).toEqual([]);
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

    it("only owning members manage webhooks: others get FORBIDDEN; a missing channel is NOT_FOUND for owners", async () => {
      const { s, owner, channelName } = await dashboard();
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

    it("refuses bad URLs, secrets and ids with BAD_REQUEST", async () => {
      const { owner, channelName } = await dashboard();
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
      const { s, owner, channelName } = await dashboard();
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
// Across instances: replay protection and the outbox hold for the cluster, not one process.

const SUITE = "webhooks across two instances: postgres + redis";
const adminUrl = postgresUrlForTests(SUITE);
const redisUrl = redisUrlForTests();

describe.skipIf(!adminUrl || !redisUrl)(SUITE, () => {
  let fresh: FreshPostgres | undefined;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    fresh = await createFreshDatabase(adminUrl!, "channels_webhooks");
    const env = {
      ...WEBHOOK_ENV,
      REDIS_URL: redisUrl!,
      CHANNELS_JWT_SECRET: randomSecret(),
      CHANNELS_WEBHOOK_POLL_MS: "20",
      CHANNELS_RATE_BROADCASTS_PER_MIN: "10000",
    };
    a = await startTestServer({ env: { ...env, CHANNELS_INSTANCE_ID: "a" }, database: { url: fresh.url } });
    b = await startTestServer({ env: { ...env, CHANNELS_INSTANCE_ID: "b" }, database: { url: fresh.url } });
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await fresh?.drop();
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
