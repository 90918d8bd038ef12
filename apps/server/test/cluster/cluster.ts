/**
 * Helpers for the multi-instance tests: real server processes (what `pnpm start` runs, see server-program.ts),
 * nginx as a round-robin load balancer in front of them, a TCP proxy whose connections a test can
 * cut, a dedicated redis-server a test may stop and restart, and a delivery audit. Everything a
 * helper starts is registered with a `Resources` list that the suite releases in afterAll, whether
 * the tests passed or not; a process-exit hook SIGKILLs any child that is still alive.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChannelMessage, mintToken } from "@wedsync/channels";
import { type ChannelsClient, createChannelsClient } from "@wedsync/client";
import { redisUrlForTests, startRedisServer } from "../../../../packages/bus/test/redis-server.ts";
import { createFreshDatabase, postgresUrlForTests } from "../../../../packages/db/test/fresh-postgres.ts";
import { type Claims, type Collector, collect, fullClaims, randomSecret } from "../harness.ts";
import { SERVER_DIR, SERVER_PROGRAM } from "../server-program.ts";

// ---------------------------------------------------------------------------------------------
// Prerequisites: skipped locally with a note, a loud failure under CI.

export interface ClusterPrerequisites {
  /** Admin URL of the Postgres server; each suite creates (and drops) its own database there. */
  adminUrl: string;
  /** The shared Redis. Suites that stop Redis start their own redis-server instead. */
  redisUrl: string;
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/**
 * DATABASE_URL, REDIS_URL and the binaries the suite needs (nginx, redis-server). Under CI a
 * missing one throws (a skipped cluster suite would be a hole in the safety net); locally the
 * suite is skipped with a note.
 */
export function clusterPrerequisites(
  suite: string,
  binaries: string[] = ["nginx"],
): ClusterPrerequisites | undefined {
  const adminUrl = postgresUrlForTests(suite);
  const redisUrl = redisUrlForTests();
  const missing = binaries.filter((binary) => !hasCommand(binary));
  if (missing.length > 0 && process.env.CI)
    throw new Error(`${suite}: ${missing.join(", ")} not found but CI is set (.ci/run installs nginx)`);
  if (!adminUrl) return undefined;
  if (!redisUrl) {
    console.warn(`[${suite}] skipped: REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379).`);
    return undefined;
  }
  if (missing.length > 0) {
    console.warn(`[${suite}] skipped: ${missing.join(", ")} not installed (apt-get install nginx-light).`);
    return undefined;
  }
  return { adminUrl, redisUrl };
}

// ---------------------------------------------------------------------------------------------
// Cleanup

const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

function track(child: ChildProcess) {
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
}

/** Cleanups run in reverse order of registration; every one runs even when another fails. */
export class Resources {
  private readonly cleanups: Array<{ what: string; run: () => unknown }> = [];

  add(what: string, run: () => unknown) {
    this.cleanups.push({ what, run });
  }

  async release() {
    const failures: string[] = [];
    for (const { what, run } of this.cleanups.reverse()) {
      try {
        await withTimeout(Promise.resolve(run()), 15_000, `cleanup: ${what}`);
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message}`);
      }
    }
    this.cleanups.length = 0;
    if (failures.length > 0) throw new Error(`cleanup failed:\n  ${failures.join("\n  ")}`);
  }
}

export function tempDir(resources: Resources, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  resources.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs `task` over `items` with at most `concurrency` at a time. */
export async function mapLimit<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

// ---------------------------------------------------------------------------------------------
// Server processes

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** CHANNELS_INSTANCE_ID, e.g. i1. */
  readonly id: string;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** False once the process exited (until restart()). */
  readonly running: boolean;
  /** Resolves when the current process exits. */
  readonly exited: Promise<ExitInfo>;
  /** The last lines the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** Calls `listener` with every line the process prints from now on (pino JSON at LOG_LEVEL). */
  onLine(listener: (line: string) => void): void;
  readyz(): Promise<{ status: number; body: Record<string, unknown> }>;
  /** channels_connections from /metrics. */
  connections(): Promise<number>;
  /** kill -9: no drain, no goodbye. */
  kill9(): Promise<ExitInfo>;
  /** SIGTERM; resolves with how it exited and how long it took. */
  terminate(): Promise<ExitInfo & { ms: number }>;
  /** Starts the process again on the same port and waits for /readyz. */
  restart(): Promise<void>;
}

export interface StartServersOptions {
  count: number;
  databaseUrl: string;
  redisUrl: string;
  secret: string;
  /** Extra environment for every instance. */
  env?: Record<string, string>;
}

/** Generous limits: the tests measure delivery, not throttling. */
const UNTHROTTLED: Record<string, string> = {
  CHANNELS_RATE_BROADCASTS_PER_MIN: "1000000",
  CHANNELS_RATE_SUBSCRIBES_PER_HOUR: "1000000",
  CHANNELS_RATE_MESSAGES_PER_CONNECTION: "100000",
  // Every test client connects from 127.0.0.1.
  CHANNELS_RATE_CONNECTIONS_PER_IP_PER_MIN: "1000000",
  CHANNELS_TIER_FREE: "1000",
  CHANNELS_TIER_PAID: "1000",
};

async function fetchJson(url: string, timeoutMs = 5_000) {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body };
}

class ServerChild implements ServerProcess {
  private child: ChildProcess | undefined;
  private lines: string[] = [];
  private readonly listeners: Array<(line: string) => void> = [];
  exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });

  constructor(
    readonly id: string,
    public port: number,
    private readonly env: Record<string, string>,
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  output() {
    return this.lines.join("\n");
  }

  onLine(listener: (line: string) => void) {
    this.listeners.push(listener);
  }

  spawn() {
    const child = spawn(process.execPath, SERVER_PROGRAM, {
      cwd: SERVER_DIR,
      env: { ...this.env, PORT: String(this.port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    this.child = child;
    const keeper = () => {
      let partial = "";
      return (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        this.lines.push(...lines);
        if (this.lines.length > 200) this.lines = this.lines.slice(-200);
        for (const line of lines) for (const listener of this.listeners) listener(line);
      };
    };
    child.stdout?.on("data", keeper());
    child.stderr?.on("data", keeper());
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal: signal as NodeJS.Signals | null })),
    );
  }

  async waitReady(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running)
        throw new Error(
          `${this.id} exited during start (${JSON.stringify(await this.exited)}):\n${this.output()}`,
        );
      try {
        const { status, body } = await this.readyz();
        if (status === 200 && body.status === "ready") return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`${this.id} not ready after ${timeoutMs} ms:\n${this.output()}`);
      await sleep(100);
    }
  }

  readyz() {
    return fetchJson(`${this.url}/readyz`);
  }

  async connections() {
    const response = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const match = /^channels_connections(?:\{[^}]*\})? (\S+)$/m.exec(await response.text());
    return match ? Number(match[1]) : Number.NaN;
  }

  async kill9() {
    this.child?.kill("SIGKILL");
    return this.exited;
  }

  async terminate() {
    const started = Date.now();
    this.child?.kill("SIGTERM");
    const info = await this.exited;
    return { ...info, ms: Date.now() - started };
  }

  async restart() {
    if (this.running) throw new Error(`${this.id} is still running`);
    this.spawn();
    await this.waitReady();
  }
}

/**
 * Starts `count` server processes on one database and one Redis, concurrently (migrations take a
 * lock, so that is safe), and waits until each reports ready. A port taken between choosing and
 * binding is retried with another one.
 */
export async function startServers(
  resources: Resources,
  options: StartServersOptions,
): Promise<ServerProcess[]> {
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    NODE_ENV: "production",
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    CHANNELS_JWT_SECRET: options.secret,
    LOG_LEVEL: "warn",
    // Behind nginx, as docs/deploy.md recommends: the client IP comes from X-Forwarded-For.
    CHANNELS_TRUST_PROXY: "true",
    ...UNTHROTTLED,
    ...options.env,
  };
  const startOne = async (index: number): Promise<ServerChild> => {
    for (let attempt = 0; ; attempt++) {
      const id = `i${index + 1}`;
      const server = new ServerChild(id, await freePort(), { ...baseEnv, CHANNELS_INSTANCE_ID: id });
      server.spawn();
      resources.add(`stop ${id}`, async () => {
        if (server.running) await server.kill9();
      });
      try {
        await server.waitReady();
        return server;
      } catch (error) {
        const portTaken = server.output().includes("EADDRINUSE");
        if (server.running) await server.kill9();
        if (!portTaken || attempt >= 2) throw error;
      }
    }
  };
  return Promise.all(Array.from({ length: options.count }, (_, index) => startOne(index)));
}

// ---------------------------------------------------------------------------------------------
// nginx

export interface NginxSiteOptions {
  /** What `listen` gets: a port or address:port. */
  listen: string | number;
  /** host:port of each instance; requests go round robin over them. */
  upstreams: string[];
  /** Instances used only while every upstream is down (the backoff test parks its clients on one). */
  backups?: string[];
}

/**
 * The load balancer in front of N instances: plain round robin (no ip_hash, no sticky cookie: any
 * instance serves any client), WebSocket upgrades passed through, long read timeouts for idle
 * sockets, and a retry on the next instance when one refuses or is draining. docs/deploy.md shows
 * this function's output; test/cluster/deploy-doc.test.ts keeps the two in sync.
 */
export function nginxSiteConfig(options: NginxSiteOptions): string {
  const servers = [
    ...options.upstreams.map((address) => `    server ${address} max_fails=1 fail_timeout=5s;`),
    ...(options.backups ?? []).map((address) => `    server ${address} backup;`),
  ].join("\n");
  return `# WedSync Channels: N instances behind nginx, round robin, no sticky sessions.
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      '';
}

upstream wedsync_channels {
${servers}
    keepalive 32;
}

server {
    listen ${options.listen};

    location / {
        proxy_pass http://wedsync_channels;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        # With CHANNELS_TRUST_PROXY=true the server takes the last entry as the client IP (per-IP
        # connection limit); overwriting the header keeps it to that one entry.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_buffering off;
        # Idle WebSockets stay open; the server's heartbeat (CHANNELS_HEARTBEAT_MS) finds dead peers.
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_connect_timeout 2s;
        # A dead (refused) or draining (503) instance: try the next one. nginx does not resend a
        # POST that already reached an instance.
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 3;
    }
}
`;
}

/**
 * The main-context wrapper the tests run nginx with: in the foreground, one process, every file
 * (pid, logs, temp paths) inside `dir`, and the site config from `dir/channels.conf`.
 */
export function nginxStandaloneConfig(dir: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
    worker_connections 8192;
}

http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/channels.conf;
}
`;
}

export interface Nginx {
  url: string;
  port: number;
  dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

export async function startNginx(
  resources: Resources,
  options: { upstreams: ServerProcess[]; backups?: ServerProcess[] },
): Promise<Nginx> {
  const dir = tempDir(resources, "wedsync-nginx");
  const port = await freePort();
  const site = nginxSiteConfig({
    listen: `127.0.0.1:${port}`,
    upstreams: options.upstreams.map((server) => `127.0.0.1:${server.port}`),
    backups: options.backups?.map((server) => `127.0.0.1:${server.port}`),
  });
  const conf = join(dir, "nginx.conf");
  writeFileSync(join(dir, "channels.conf"), site);
  writeFileSync(conf, nginxStandaloneConfig(dir));
  const child = spawn("nginx", ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  track(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const errorLog = () => {
    try {
      return `${stderr}${readFileSync(join(dir, "error.log"), "utf8")}`;
    } catch {
      return stderr;
    }
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const stopped = await Promise.race([exited.then(() => true), sleep(3_000).then(() => false)]);
    if (!stopped) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  resources.add("stop nginx", stop);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited at start:\n${errorLog()}`);
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`nginx did not answer /healthz in 10 s:\n${errorLog()}`);
    await sleep(50);
  }
  return { url, port, dir, errorLog, stop };
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy whose connections the test can cut

export interface CutProxy {
  url: string;
  port: number;
  /** Date.now() of every accepted connection, in order. */
  readonly accepted: number[];
  open(): number;
  /** Destroys every proxied connection on both sides, like a network cut; returns how many. */
  cut(): number;
  close(): Promise<void>;
}

export async function startCutProxy(resources: Resources, targetPort: number): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const accepted: number[] = [];
  const server = createServer((downstream) => {
    accepted.push(Date.now());
    const upstream = connect(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [downstream, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.setNoDelay(true);
      socket.on("error", drop);
      socket.on("close", drop);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // A reconnect storm arrives at once: a deep accept queue, so no SYN is dropped and retried.
    server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const cut = () => {
    const n = pairs.size;
    for (const [downstream, upstream] of [...pairs]) {
      downstream.destroy();
      upstream.destroy();
    }
    pairs.clear();
    return n;
  };
  const close = async () => {
    cut();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  resources.add("close cut proxy", close);
  return { url: `http://127.0.0.1:${port}`, port, accepted, open: () => pairs.size, cut, close };
}

// ---------------------------------------------------------------------------------------------
// A dedicated Redis the test may stop and start (never the shared one)

export interface DedicatedRedis {
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export async function startDedicatedRedis(resources: Resources): Promise<DedicatedRedis> {
  let current: Awaited<ReturnType<typeof startRedisServer>> | undefined = await startRedisServer();
  const { port, url } = current;
  const redis: DedicatedRedis = {
    url,
    port,
    get running() {
      return current !== undefined;
    },
    async stop() {
      const stopping = current;
      current = undefined;
      await stopping?.stop();
    },
    async start() {
      if (current) return;
      current = await startRedisServer(port);
    },
  };
  resources.add(`stop redis-server :${port}`, () => redis.stop());
  return redis;
}

// ---------------------------------------------------------------------------------------------
// A cluster: database + N server processes, tokens and clients

export interface Cluster {
  databaseUrl: string;
  secret: string;
  servers: ServerProcess[];
  token(claims: Claims): Promise<string>;
  /** A client against `url` (nginx, a proxy or one instance); closed when the suite releases. */
  client(url: string, claims: Claims, retryDelayMs?: (attempt: number) => number): Promise<ChannelsClient>;
}

export async function startCluster(
  resources: Resources,
  options: { adminUrl: string; redisUrl: string; count: number; env?: Record<string, string> },
): Promise<Cluster> {
  const database = await createFreshDatabase(options.adminUrl, "channels_cluster");
  resources.add(`drop database ${database.name}`, () => database.drop());
  const secret = randomSecret();
  const servers = await startServers(resources, {
    count: options.count,
    databaseUrl: database.url,
    redisUrl: options.redisUrl,
    secret,
    env: options.env,
  });
  const clients = new Set<ChannelsClient>();
  resources.add("close clients", async () => {
    await Promise.allSettled(
      [...clients].map((client) => withTimeout(client.close(), 5_000, "client close")),
    );
  });
  const token = (claims: Claims) => mintToken(secret, fullClaims(claims));
  return {
    databaseUrl: database.url,
    secret,
    servers,
    token,
    async client(url, claims, retryDelayMs) {
      const minted = await token(claims);
      const client = createChannelsClient({ url, token: minted, retryDelayMs });
      clients.add(client);
      return client;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Subscribers and the delivery audit

export interface Subscriber {
  channel: string;
  stream: Collector;
  /** Date.now() of every `started` (the first subscribe and every resume after a reconnect). */
  starts: number[];
  /** Date.now() of every time the client saw its socket go and began to reconnect. */
  disconnects: number[];
}

/** channel.events through the client library: wsLink resumes with lastEventId after a reconnect. */
export function subscribe(client: ChannelsClient, channel: string): Subscriber {
  const starts: number[] = [];
  const disconnects: number[] = [];
  const stream = collect((handlers) =>
    client.trpc.channel.events.subscribe(
      { channelName: channel },
      {
        ...handlers,
        onStarted: () => {
          starts.push(Date.now());
          handlers.onStarted();
        },
        onConnectionStateChange: (state) => {
          if (state.state === "connecting" && state.error) disconnects.push(Date.now());
        },
      },
    ),
  );
  return { channel, stream, starts, disconnects };
}

export interface Acked {
  channel: string;
  id: string;
  seq: number;
  text: string;
}

export interface DeliveryAudit {
  acked: number;
  /** Acknowledged messages that reached a subscriber of their channel (once per subscriber). */
  delivered: number;
  /** acked x subscribers of the channel. */
  expected: number;
  duplicates: number;
  missing: number;
  outOfOrder: number;
  /** Messages of another channel, or with a text other than the acknowledged one. */
  crossed: number;
  resets: number;
  /** Delivered but never acknowledged (stored by a request whose answer was lost); allowed. */
  unacked: number;
}

/** Compares what every subscriber received with what the publishers had acknowledged. */
export function auditDelivery(
  acked: Acked[],
  subscribers: Array<{ channel: string; messages: ChannelMessage[]; resets: number }>,
): DeliveryAudit {
  const byChannel = new Map<string, Map<string, Acked>>();
  for (const ack of acked) {
    const map = byChannel.get(ack.channel) ?? new Map<string, Acked>();
    byChannel.set(ack.channel, map);
    map.set(ack.id, ack);
  }
  const audit: DeliveryAudit = {
    acked: acked.length,
    delivered: 0,
    expected: 0,
    duplicates: 0,
    missing: 0,
    outOfOrder: 0,
    crossed: 0,
    resets: 0,
    unacked: 0,
  };
  for (const subscriber of subscribers) {
    const expected = byChannel.get(subscriber.channel) ?? new Map<string, Acked>();
    audit.expected += expected.size;
    audit.resets += subscriber.resets;
    const seen = new Set<string>();
    let lastSeq = -1;
    for (const message of subscriber.messages) {
      if (message.channel !== subscriber.channel) {
        audit.crossed += 1;
        continue;
      }
      if (seen.has(message.id)) {
        audit.duplicates += 1;
        continue;
      }
      seen.add(message.id);
      if (message.seq <= lastSeq) audit.outOfOrder += 1;
      lastSeq = message.seq;
      const ack = expected.get(message.id);
      if (!ack) audit.unacked += 1;
      else if (ack.seq !== message.seq || !("text" in message.payload) || message.payload.text !== ack.text)
        audit.crossed += 1;
      else audit.delivered += 1;
    }
    for (const id of expected.keys()) if (!seen.has(id)) audit.missing += 1;
  }
  return audit;
}

export const formatAudit = (audit: DeliveryAudit) =>
  `acked=${audit.acked} delivered=${audit.delivered} (expected ${audit.expected}) duplicates=${audit.duplicates} missing=${audit.missing} outOfOrder=${audit.outOfOrder} crossed=${audit.crossed} resets=${audit.resets} unacked=${audit.unacked}`;

/** Waits until every subscriber holds every acknowledged message of its channel (or the time is up). */
export async function waitForDelivery(acked: Acked[], subscribers: Subscriber[], timeoutMs: number) {
  const wanted = new Map<string, Set<string>>();
  for (const ack of acked) {
    const set = wanted.get(ack.channel) ?? new Set<string>();
    wanted.set(ack.channel, set);
    set.add(ack.id);
  }
  const complete = (subscriber: Subscriber) => {
    const want = wanted.get(subscriber.channel);
    if (!want) return true;
    let have = 0;
    for (const { data } of subscriber.stream.items)
      if (data.type === "message" && want.has(data.id)) have += 1;
    return have >= want.size;
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (subscribers.every(complete)) return true;
    await sleep(100);
  }
  return subscribers.every(complete);
}

export const toAudited = (subscriber: Subscriber) => ({
  channel: subscriber.channel,
  messages: subscriber.stream.messages(),
  resets: subscriber.stream.resets().length,
});

// ---------------------------------------------------------------------------------------------
// Publishing with acknowledgements

export interface Publisher {
  /** Every acknowledged broadcast. */
  readonly acked: Acked[];
  /** Broadcast attempts that failed (and were retried elsewhere with the same idempotency key). */
  readonly failedAttempts: number;
  /**
   * Broadcasts to a random instance among `targets()`; a failed attempt is retried on another
   * with the same idempotencyKey (so a broadcast stored by a dying instance is stored once).
   * Resolves with the ack, or undefined when every attempt failed.
   */
  broadcast(
    channel: string,
    text: string,
    options?: { attempts?: number; idempotent?: boolean },
  ): Promise<Acked | undefined>;
}

let publishCounter = 0;

export function createPublisher(
  clientFor: (server: ServerProcess) => ChannelsClient,
  targets: () => ServerProcess[],
): Publisher {
  const acked: Acked[] = [];
  let failedAttempts = 0;
  return {
    acked,
    get failedAttempts() {
      return failedAttempts;
    },
    async broadcast(channel, text, options = {}) {
      publishCounter += 1;
      const idempotencyKey =
        options.idempotent === false
          ? undefined
          : `k-${process.pid}-${publishCounter}-${Math.random().toString(36).slice(2, 8)}`;
      const attempts = options.attempts ?? 30;
      let previous: ServerProcess | undefined;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const candidates = targets().filter((server) => server !== previous);
        const server = pick(candidates.length > 0 ? candidates : targets());
        previous = server;
        try {
          const result = await withTimeout(
            clientFor(server).trpc.channel.broadcast.mutate({
              channelName: channel,
              event: "message.posted",
              payload: { text },
              idempotencyKey,
            }),
            10_000,
            `broadcast via ${server.id}`,
          );
          const ack = { channel, id: result.id, seq: result.seq, text };
          acked.push(ack);
          return ack;
        } catch {
          failedAttempts += 1;
          await sleep(100 + Math.random() * 200);
        }
      }
      return undefined;
    },
  };
}

/** The largest share of `times` that falls into any window of `windowMs` (sliding). */
export function busiestWindowShare(times: number[], windowMs: number): { share: number; count: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return { share: sorted.length === 0 ? 0 : best / sorted.length, count: best };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
