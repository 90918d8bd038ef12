import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { events, uid } from "../harness.ts";
import {
  type Acked,
  auditDelivery,
  type Cluster,
  clusterPrerequisites,
  formatAudit,
  mapLimit,
  type Nginx,
  pick,
  Resources,
  type ServerProcess,
  type Subscriber,
  sleep,
  startCluster,
  startNginx,
  subscribe,
  toAudited,
  waitForDelivery,
  withTimeout,
} from "./cluster.ts";

const SUITE = "cluster: SIGTERM drains an instance";
const prerequisites = clusterPrerequisites(SUITE);

const CHANNELS = 6;
const SUBSCRIBERS = 60;
const SHUTDOWN_DEADLINE_MS = 10_000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** The HTTP/1.1 responses in a raw byte stream, in order (interim 1xx answers left out). */
function answers(raw: string): Answer[] {
  return raw
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .map((part) => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(part)?.[1]);
      // The body may come chunked: take the JSON object out of it.
      const json = /\{.*\}/s.exec(part.slice(part.indexOf("\r\n\r\n")))?.[0];
      return { status, body: json ? (JSON.parse(json) as Record<string, unknown>) : {} };
    })
    .filter(({ status }) => status >= 200);
}

/**
 * A channel.broadcast over plain HTTP (tRPC's wire format: superjson input under `json`) that is
 * in flight when the shutdown starts: its headers have been read (the server answered
 * `100 Continue`), its body lacks one byte. `finish()` sends that byte and, pipelined behind it on
 * the same busy connection, a readiness check; it returns both answers.
 */
async function heldBroadcast(port: number, token: string, channelName: string, text: string) {
  const body = JSON.stringify({ json: { channelName, event: "message.posted", payload: { text } } });
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  let raw = "";
  let onData = () => {};
  socket.on("data", (chunk: Buffer) => {
    raw += chunk.toString();
    onData();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  socket.write(
    `POST /trpc/channel.broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
  );
  await withTimeout(
    new Promise<void>((resolve) => {
      onData = () => raw.includes("100 Continue") && resolve();
      onData();
    }),
    10_000,
    "100 Continue",
  );
  socket.write(body.slice(0, -1));
  return {
    async finish(): Promise<{ broadcast?: Answer; readiness?: Answer }> {
      socket.write(`${body.slice(-1)}GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      await withTimeout(closed, 8_000, "the held requests to be answered");
      const [broadcast, readiness] = answers(raw);
      return { broadcast, readiness };
    },
  };
}

describe.skipIf(!prerequisites)(SUITE, () => {
  const resources = new Resources();
  let cluster: Cluster;
  let nginx: Nginx;

  beforeAll(async () => {
    cluster = await startCluster(resources, { ...prerequisites!, count: 3 });
    nginx = await startNginx(resources, { upstreams: cluster.servers });
  }, 60_000);

  afterAll(() => resources.release(), 60_000);

  it("readiness fails, acknowledged broadcasts are stored and delivered elsewhere, clients move, the process exits in time", async () => {
    const [first, victim, third] = cluster.servers as [ServerProcess, ServerProcess, ServerProcess];
    const suppliers = Array.from({ length: CHANNELS }, () => uid("s"));
    const channels = suppliers.map((supplier) => `supplier:dashboard:${supplier}`);
    const owner = await cluster.client(first.url, { sub: uid("owner"), role: "supplier", suppliers });
    const created = new Map<string, string>();
    for (const supplier of suppliers) {
      const channel = await owner.trpc.channel.create.mutate({
        scope: "supplier",
        entity: "dashboard",
        entityId: supplier,
      });
      created.set(channel.name, channel.id);
    }

    const subscribers: Subscriber[] = await mapLimit(
      Array.from({ length: SUBSCRIBERS }, (_, i) => i),
      10,
      async (i) => {
        const supplier = suppliers[i % CHANNELS]!;
        const client = await cluster.client(nginx.url, {
          sub: uid("m"),
          role: "supplier",
          suppliers: [supplier],
        });
        const subscriber = subscribe(client, `supplier:dashboard:${supplier}`);
        await withTimeout(subscriber.stream.started, 20_000, `subscriber ${i} started`);
        return subscriber;
      },
    );
    const onVictim = await victim.connections();
    expect(onVictim).toBeGreaterThan(0);

    // Broadcasts through the victim only, several in flight at any time, until it is gone.
    const viaVictim = await cluster.client(victim.url, {
      sub: uid("publisher"),
      role: "supplier",
      suppliers,
    });
    const acked: Array<Acked & { at: number }> = [];
    let failed = 0;
    let inFlight = 0;
    let sent = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const channel = pick(channels);
        const text = `d${sent++}`;
        inFlight += 1;
        try {
          const { id, seq } = await viaVictim.trpc.channel.broadcast.mutate({
            channelName: channel,
            event: "message.posted",
            payload: { text },
          });
          acked.push({ channel, id, seq, text, at: Date.now() });
        } catch {
          failed += 1;
          await sleep(50);
        } finally {
          inFlight -= 1;
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await sleep(1_500);

    // A broadcast that has begun but not finished when the signal lands (its body is still
    // arriving): the drain must wait for it and answer it.
    const heldToken = await cluster.token({ sub: uid("held"), role: "supplier", suppliers });
    const heldChannel = channels[0]!;
    const held = await heldBroadcast(victim.port, heldToken, heldChannel, "held");
    const signalledAt = Date.now();
    const inFlightAtSignal = inFlight + 1;
    const exit = victim.terminate();
    // The listener closes in the same step that starts the drain: once a new connection is
    // refused, the instance is draining.
    let newConnection = "";
    for (let i = 0; i < 400; i++) {
      try {
        const response = await fetch(`${victim.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        newConnection = `HTTP ${response.status} ${await response.text()}`;
      } catch (error) {
        newConnection = `refused (${String((error as Error).cause ?? error)})`;
        break;
      }
      await sleep(5);
    }
    // Long after the other in-flight broadcasts were answered: the drain still waits for this one,
    // whose body is not complete yet (it gives up after 5 s).
    await sleep(1_000);
    const { broadcast: heldAnswer, readiness } = await held.finish();
    const heldResult = (heldAnswer?.body as { result?: { data?: { json?: { id: string; seq: number } } } })
      ?.result?.data?.json;
    if (heldResult) acked.push({ channel: heldChannel, ...heldResult, text: "held", at: Date.now() });
    const exited = await withTimeout(exit, SHUTDOWN_DEADLINE_MS + 5_000, `${victim.id} to exit`);
    stop = true;
    await Promise.all(workers);

    // Every subscriber (including the victim's, now elsewhere) holds every acknowledged message.
    const complete = await waitForDelivery(acked, subscribers, 30_000);
    const audit = auditDelivery(acked, subscribers.map(toAudited));

    // The victim's clients got the reconnect notification and resumed on the other instances.
    const deadline = Date.now() + 20_000;
    while (subscribers.filter((s) => s.starts.length >= 2).length < onVictim && Date.now() < deadline)
      await sleep(50);
    const [onFirst, onThird] = await Promise.all([first.connections(), third.connections()]);

    // Stored: a fresh reader on a survivor replays each channel from its start.
    const reader = await cluster.client(third.url, { sub: uid("reader"), role: "supplier", suppliers });
    let storedAcked = 0;
    for (const channel of channels) {
      const want = new Set(acked.filter((ack) => ack.channel === channel).map((ack) => ack.id));
      const replay = events(reader, channel, `${created.get(channel)}:0`);
      await replay
        .untilMatch(
          (items) => items.filter(({ id }) => want.has(id)).length >= want.size,
          "every acked id",
          15_000,
        )
        .catch(() => {});
      storedAcked += replay.items.filter(({ id }) => want.has(id)).length;
      replay.unsubscribe();
    }
    const moved = subscribers.filter((s) => s.starts.length >= 2).length;
    const ackedAfterSignal = acked.filter((ack) => ack.at >= signalledAt).length;

    console.log(
      `[shutdown] ${victim.id}: ${onVictim} subscriber connection(s); SIGTERM with ${inFlightAtSignal} broadcast(s) in flight; ` +
        `held /readyz -> ${readiness?.status} ${JSON.stringify(readiness?.body)}; new connection -> ${newConnection}; ` +
        `held broadcast -> ${heldAnswer?.status} ${JSON.stringify(heldResult)}\n` +
        `[shutdown] exited code=${exited.code} signal=${exited.signal} after ${exited.ms} ms; acked by ${victim.id}: ${acked.length} ` +
        `(${ackedAfterSignal} after the signal), failed: ${failed}; stored: ${storedAcked}/${acked.length}; ` +
        `subscribers that moved: ${moved}\n[shutdown] ${formatAudit(audit)}`,
    );

    // Asked on that busy connection after the signal: not ready.
    expect(readiness).toMatchObject({ status: 503, body: { status: "draining" } });
    // The broadcast that was still arriving when the signal came was finished and acknowledged.
    expect(heldAnswer?.status).toBe(200);
    expect(heldResult).toMatchObject({ id: expect.any(String), seq: expect.any(Number) });
    expect(newConnection).not.toMatch(/^HTTP 200/);
    expect(exited.code).toBe(0);
    expect(exited.ms).toBeLessThan(SHUTDOWN_DEADLINE_MS);
    expect(acked.length).toBeGreaterThan(0);
    expect(storedAcked).toBe(acked.length);
    expect(complete).toBe(true);
    // unacked = 0: what failed at the client was not stored either. The drain finished what had
    // started, and calls that arrived after the signal were refused rather than cut mid-way.
    expect(audit).toMatchObject({
      duplicates: 0,
      missing: 0,
      outOfOrder: 0,
      crossed: 0,
      resets: 0,
      unacked: 0,
    });
    expect(audit.delivered).toBe(audit.expected);
    // The victim's clients reconnected elsewhere (the others stayed where they were).
    expect(moved).toBeGreaterThanOrEqual(onVictim);
    expect(onFirst + onThird).toBe(SUBSCRIBERS);
  }, 120_000);
});
