import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, events, post, startTestServer, supplierDashboard, type TestServer, uid } from "./harness.ts";
import { SERVER_DIR, SERVER_PROGRAM } from "./server-program.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

async function metrics(url = server.url): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
  return response.text();
}

/** The value of a sample in Prometheus text format: a metric's name, with its labels if it has any. */
function sample(text: string, name: string): number {
  const match = new RegExp(`^${name.replace(/[{}]/g, "\\$&")} ([0-9.e+-]+)$`, "m").exec(text);
  if (!match) throw new Error(`metric ${name} not found in:\n${text}`);
  return Number(match[1]);
}

/** A supplier's dashboard channel with one stored message, its owner and `readers` colleagues. */
async function dashboardWithOpening(readers: number) {
  const { s, owner, channelName } = await supplierDashboard(server);
  const colleague = () => server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
  const opening = await post(owner, channelName, "opening");
  return { owner, readers: Array.from({ length: readers }, colleague), channelName, opening };
}

describe("ops endpoints", () => {
  it("GET /healthz is 200 with the instance id", async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", instanceId: server.instance.services.instanceId });
  });

  it("GET /readyz is 200 once the database answers", async () => {
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready", database: "ok" });
  });

  it("unknown paths are 404 and other methods 405", async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/healthz`, { method: "POST" })).status).toBe(405);
  });

  it("/metrics exposes the documented names", async () => {
    const text = await metrics();
    for (const name of [
      "channels_connections",
      "channels_subscriptions",
      "channels_channels",
      "channels_broadcasts_total",
      "channels_deliveries_total",
      "channels_delivery_latency_seconds",
      "channels_broadcast_store_seconds",
      "channels_store_vacuum_seconds",
      "channels_store_vacuums_total",
      "channels_store_analyzes_total",
      "channels_slow_consumers_dropped_total",
      "channels_auth_failures_total",
      "channels_rate_limited_total",
      "channels_heartbeat_timeouts_total",
      "channels_queue_depth",
      "channels_dependency_up",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it("channels_broadcasts_total and channels_deliveries_total count broadcasts and deliveries", async () => {
    const {
      owner,
      readers: [colleague],
      channelName,
      opening,
    } = await dashboardWithOpening(1);
    const stream = events(colleague!, channelName, opening.id);

    const before = await metrics();
    for (let i = 0; i < 3; i++) await post(owner, channelName, `m${i}`);
    // An idempotent retry is not a new broadcast.
    const keyed = {
      channelName,
      event: "message.posted",
      payload: { text: "once" },
      idempotencyKey: "k",
    } as const;
    await owner.trpc.channel.broadcast.mutate(keyed);
    await owner.trpc.channel.broadcast.mutate(keyed);
    await stream.until(4);
    const after = await metrics();

    expect(sample(after, "channels_broadcasts_total") - sample(before, "channels_broadcasts_total")).toBe(4);
    expect(sample(after, "channels_deliveries_total") - sample(before, "channels_deliveries_total")).toBe(4);
    // Counted at the scrape, not only when someone asks admin.stats.
    expect(sample(after, "channels_queue_depth") - sample(before, "channels_queue_depth")).toBe(4);
    expect(sample(after, "channels_subscriptions")).toBeGreaterThanOrEqual(1);
    expect(sample(after, "channels_connections")).toBeGreaterThanOrEqual(1);
    stream.unsubscribe();
  });

  it("every delivery to every subscriber is counted and has its latency observed", async () => {
    const { owner, readers, channelName, opening } = await dashboardWithOpening(2);
    // Both streams start before the opening message: once they have it from the store, they are live.
    const start = opening.id.replace(/:\d+$/, ":0");
    const streams = readers.map((reader) => events(reader, channelName, start));
    for (const stream of streams) await stream.until(1);

    const before = await metrics();
    for (let i = 0; i < 3; i++) await post(owner, channelName, `m${i}`);
    for (const stream of streams) await stream.until(4);
    const after = await metrics();

    const delta = (metric: string) => sample(after, metric) - sample(before, metric);
    expect(delta("channels_deliveries_total")).toBe(6);
    expect(delta("channels_delivery_latency_seconds_count")).toBe(6);
    for (const stream of streams) stream.unsubscribe();
  });

  it("channels_broadcast_store_seconds observes the store's wait of every stored broadcast, and only those", async () => {
    const { s, owner, channelName } = await supplierDashboard(server);
    const outsider = server.client({ sub: uid("u"), role: "supplier", suppliers: [uid("other")] });
    const before = await metrics();
    await post(owner, channelName, "first");
    await post(owner, channelName, "second");
    type Broadcast = Parameters<typeof owner.trpc.channel.broadcast.mutate>[0];
    const refused = [
      // Deliberately outside the typed input, as a buggy client sends it.
      owner.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { title: "no text" },
      } as unknown as Broadcast),
      outsider.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text: "hi" },
      }),
      owner.trpc.channel.broadcast.mutate({
        channelName: `collaboration:${s}:${uid("c")}`,
        event: "message.posted",
        payload: { text: "hi" },
      }),
    ];
    expect(await Promise.all(refused.map(codeOf))).toEqual(["BAD_REQUEST", "FORBIDDEN", "NOT_FOUND"]);
    const after = await metrics();

    const delta = (metric: string) => sample(after, metric) - sample(before, metric);
    expect(delta("channels_broadcast_store_seconds_count")).toBe(2);
    expect(delta("channels_broadcast_store_seconds_sum")).toBeGreaterThan(0);
  });

  it("refused tokens are counted in channels_auth_failures_total", async () => {
    const before = sample(await metrics(), "channels_auth_failures_total");
    const client = server.clientWithToken("garbage");
    expect(await codeOf(client.trpc.channel.list.query())).toBe("UNAUTHORIZED");
    expect(await codeOf(client.trpc.queue.pending.query())).toBe("UNAUTHORIZED");
    expect(sample(await metrics(), "channels_auth_failures_total")).toBe(before + 2);
  });

  it("/metrics reports the database and the bus as up", async () => {
    const text = await metrics();
    expect(text).toContain('channels_dependency_up{dependency="database"} 1');
    expect(text).toContain('channels_dependency_up{dependency="bus"} 1');
  });
});

describe("start-up configuration", () => {
  it.each([
    ["PORT", "not-a-port"],
    ["CHANNELS_RETENTION", "a week"],
    ["CHANNELS_TIER_FREE", "-3"],
  ])("refuses to start with %s=%s and names the variable", async (name, value) => {
    const child = spawn(process.execPath, SERVER_PROGRAM, {
      cwd: SERVER_DIR,
      env: { ...process.env, [name]: value, CHANNELS_DATA_DIR: "/nonexistent-never-created" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(name);
    expect(stderr).toContain("invalid configuration");
  });
});

describe("the embedded database's vacuum and analyze", () => {
  it("run with cleanup and are counted per table, once the channel heads' updates leave enough dead rows", async () => {
    const embedded = await startTestServer({
      env: { CHANNELS_CLEANUP_INTERVAL: "1s", CHANNELS_RATE_BROADCASTS_PER_MIN: "1000" },
    });
    try {
      const runs = async () => sample(await metrics(embedded.url), "channels_store_vacuum_seconds_count");
      const { owner, channelName } = await supplierDashboard(embedded);
      // Each broadcast on its own moves the channel's head: one dead version of its row each, past the
      // 50 + 20% of its rows that autovacuum's rule asks for.
      for (let i = 0; i < 120; i++) await post(owner, channelName, `update ${i}`);
      const deadline = Date.now() + 10_000;
      while ((await runs()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const text = await metrics(embedded.url);
      expect(sample(text, "channels_store_vacuum_seconds_count")).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'channels_store_vacuums_total{table="websocket_channels"}')).toBeGreaterThanOrEqual(
        1,
      );
      // 120 new messages are past the 50 + 10% of rows changed that autovacuum's analyze rule asks for.
      expect(
        sample(text, 'channels_store_analyzes_total{table="channel_message_queue"}'),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      await embedded.stop();
    }
  });
});
