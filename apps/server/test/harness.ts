import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import {
  type ChannelMessage,
  type ChannelReset,
  type ChannelStreamItem,
  type HostResolver,
  type Identity,
  loadConfig,
  mintToken,
} from "@wedsync/channels";
import {
  type ChannelsClient,
  type ChannelsClientOptions,
  createChannelsClient,
  errorCode,
} from "@wedsync/client";
import type { DatabaseOptions } from "@wedsync/db";
import { createFreshDatabase } from "../../../packages/db/test/fresh-postgres.ts";
import { type Instance, startInstance } from "../src/instance.ts";

/** Token claims; tier and memberships default to free / none. */
export type Claims = Pick<Identity, "sub" | "role"> & Partial<Omit<Identity, "sub" | "role">>;

export interface TestServerOptions {
  /** Extra environment for loadConfig, e.g. { CHANNELS_RETENTION: "2s" }. */
  env?: Record<string, string>;
  /** Defaults to an in-memory PGlite. */
  database?: DatabaseOptions;
  /** Name resolution for outbound webhook targets; the system's by default. */
  resolveHost?: HostResolver;
}

/** Tests use a short fixed reconnect delay unless they pass one, so a cut connection comes back quickly. */
export type ClientOptions = Pick<ChannelsClientOptions, "retryDelayMs" | "webSocket" | "calls">;

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:40123 (tRPC at `${url}/trpc`). */
  url: string;
  instance: Instance;
  secret: string;
  token(claims: Claims, expiresIn?: string): Promise<string>;
  /** A typed client for these claims; closed by stop(). */
  client(claims: Claims, options?: ClientOptions): ChannelsClient;
  /** A client sending exactly this token (or none, for ""), for authentication tests. */
  clientWithToken(token: string, options?: ClientOptions): ChannelsClient;
  /** Destroys every open WebSocket on the server side, like a network cut; clients reconnect by themselves. */
  dropConnections(): number;
  /** Open server-side WebSocket connections. */
  openConnections(): number;
  /** Bytes each open connection has queued in the server, not yet taken by the kernel. */
  queuedBytes(): number[];
  stop(): Promise<void>;
}

export const randomSecret = (length = 40) => randomBytes(length).toString("base64url").slice(0, length);

let counter = 0;
/** A segment unique within the test run, so every test works on its own channels and users. */
export function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString("hex")}`;
}

export function fullClaims(claims: Claims): Identity {
  return { tier: "free", suppliers: [], couples: [], venues: [], ...claims };
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const secret = options.env?.CHANNELS_JWT_SECRET ?? randomSecret();
  const config = loadConfig({
    CHANNELS_JWT_SECRET: secret,
    PORT: "0",
    LOG_LEVEL: "silent",
    ...options.env,
  });
  const instance = await startInstance({
    config,
    database: options.database ?? { memory: true },
    resolveHost: options.resolveHost,
  });
  const url = instance.url;

  // Observes upgrades next to the server's own handler, to cut connections from the server side.
  const sockets = new Set<Duplex>();
  instance.server.on("upgrade", (_req, socket: Duplex) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  const clients = new Set<ChannelsClient>();
  const track = (token: () => Promise<string> | string, clientOptions: ClientOptions = {}) => {
    const inner = createChannelsClient({ retryDelayMs: () => 50, ...clientOptions, url, token });
    let closed: Promise<void> | undefined;
    const client: ChannelsClient = {
      trpc: inner.trpc,
      close() {
        clients.delete(client);
        closed ??= inner.close();
        return closed;
      },
    };
    clients.add(client);
    return client;
  };

  const token = (claims: Claims, expiresIn?: string) => mintToken(secret, fullClaims(claims), expiresIn);

  return {
    url,
    instance,
    secret,
    token,
    client(claims, clientOptions) {
      const minted = token(claims);
      return track(() => minted, clientOptions);
    },
    clientWithToken(raw, clientOptions) {
      return track(() => raw, clientOptions);
    },
    dropConnections() {
      const n = sockets.size;
      for (const socket of sockets) socket.destroy();
      return n;
    },
    openConnections: () => sockets.size,
    queuedBytes: () => [...sockets].map((socket) => socket.writableLength),
    async stop() {
      await Promise.allSettled([...clients].map((c) => c.close()));
      await instance.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Collecting channel.events

export interface Envelope {
  id: string;
  data: ChannelStreamItem;
}

export interface StreamHandlers {
  onStarted(): void;
  onData(envelope: Envelope): void;
  onError(error: unknown): void;
  onComplete(): void;
}

export interface Collector {
  /** Every item received, in arrival order. */
  readonly items: Envelope[];
  /** The tracked id of the last item (what a resuming client sends as lastEventId). */
  readonly lastEventId: string | undefined;
  /** The error the subscription ended with, if any. */
  readonly error: unknown;
  /** Resolves when the server confirmed the subscription: from then on, every new message is delivered. */
  readonly started: Promise<void>;
  messages(): ChannelMessage[];
  resets(): ChannelReset[];
  /** Waits until at least n items arrived; fails with what did arrive. */
  until(n: number, timeoutMs?: number): Promise<Envelope[]>;
  /** Waits until the items satisfy a condition. */
  untilMatch(check: (items: Envelope[]) => boolean, what: string, timeoutMs?: number): Promise<Envelope[]>;
  /** Waits for the subscription to fail and returns the error's tRPC code. */
  failure(timeoutMs?: number): Promise<string | undefined>;
  unsubscribe(): void;
}

const DEFAULT_WAIT_MS = 10_000;

function describeItem({ data }: Envelope): string {
  if (data.type === "message")
    return `${data.channel}#${data.seq} ${data.event} ${JSON.stringify(data.payload)}`;
  return `reset(${data.reason}, oldestSeq=${data.oldestSeq})`;
}

/**
 * Subscribes with the given function and gathers what arrives, e.g.
 * `collect((h) => client.trpc.channel.events.subscribe({ channelName }, h))`.
 */
export function collect(subscribe: (handlers: StreamHandlers) => { unsubscribe(): void }): Collector {
  const items: Envelope[] = [];
  let error: unknown;
  let failed = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });

  const subscription = subscribe({
    onStarted: () => markStarted(),
    onData: (envelope) => {
      items.push(envelope);
      wake();
    },
    onError: (err) => {
      error = err;
      failed = true;
      wake();
    },
    onComplete: () => wake(),
  });

  const waitFor = (done: () => boolean, describe: () => string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) finish(resolve);
        else if (failed)
          finish(() => reject(new Error(`${describe()}, but the stream failed: ${String(error)}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`))),
        timeoutMs,
      );
      function finish(settle: () => void) {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      }
      waiters.add(check);
      check();
    });

  const summary = () => {
    const shown = items.slice(-10).map(describeItem).join("; ");
    return `${items.length} item(s) arrived${items.length > 10 ? " (last 10)" : ""}: [${shown}]`;
  };

  return {
    items,
    get lastEventId() {
      return items.at(-1)?.id;
    },
    get error() {
      return error;
    },
    started,
    messages: () => items.flatMap(({ data }) => (data.type === "message" ? [data] : [])),
    resets: () => items.flatMap(({ data }) => (data.type === "reset" ? [data] : [])),
    async until(n, timeoutMs = DEFAULT_WAIT_MS) {
      await waitFor(
        () => items.length >= n,
        () => `expected at least ${n} stream item(s); ${summary()}`,
        timeoutMs,
      );
      return items;
    },
    async untilMatch(check, what, timeoutMs = DEFAULT_WAIT_MS) {
      await waitFor(
        () => check(items),
        () => `expected ${what}; ${summary()}`,
        timeoutMs,
      );
      return items;
    },
    async failure(timeoutMs = DEFAULT_WAIT_MS) {
      await waitFor(
        () => failed,
        () => `expected the subscription to fail; ${summary()}`,
        timeoutMs,
      );
      return errorCode(error);
    },
    unsubscribe: () => subscription.unsubscribe(),
  };
}

/** channel.events for one channel, optionally resuming after lastEventId. */
export function events(client: ChannelsClient, channelName: string, lastEventId?: string): Collector {
  return collect((handlers) =>
    client.trpc.channel.events.subscribe(
      lastEventId === undefined ? { channelName } : { channelName, lastEventId },
      handlers,
    ),
  );
}

/**
 * "Receive one message": sends a probe and waits until it arrives on a live-only stream (no
 * lastEventId), then returns its seq. The server attaches a stream before it confirms `started`, so
 * the first probe normally arrives; the retry keeps this helper honest against servers that attach
 * later (then a message sent right after `started` could predate the stream's start).
 */
export async function primeLive(
  stream: Collector,
  publish: (attempt: number) => Promise<{ seq: number }>,
  attempts = 40,
): Promise<number> {
  await stream.started;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const { seq } = await publish(attempt);
    try {
      await stream.untilMatch(
        (items) => items.some(({ data }) => data.type === "message" && data.seq >= seq),
        `probe #${seq}`,
        250,
      );
      return seq;
    } catch (error) {
      if (stream.error !== undefined) throw error;
    }
  }
  throw new Error(`no probe reached the live stream after ${attempts} attempts`);
}

/** The tRPC code a rejected call fails with; fails the test if the call succeeds. */
export async function codeOf(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (error) {
    return errorCode(error) ?? `not a tRPC error: ${String(error)}`;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Polls a condition (for state that has no push notification); fails with a description. */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  what: string,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await read();
    if (check(last)) return last;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The text of a message.posted message (other events show as `<event>`). */
export const text = (message: ChannelMessage): string =>
  message.event === "message.posted" && "text" in message.payload
    ? message.payload.text
    : `<${message.event}>`;

/** A new supplier `s`'s dashboard channel, created on `server` by `owner`, a member of `s`. */
export async function supplierDashboard(server: TestServer) {
  const s = uid("s");
  const owner = server.client({ sub: uid("owner"), role: "supplier", suppliers: [s] });
  const { name: channelName } = await owner.trpc.channel.create.mutate({
    scope: "supplier",
    entity: "dashboard",
    entityId: s,
  });
  return { s, owner, channelName };
}

/** Broadcasts a message.posted with this text; resolves with the stored message's {id, seq}. */
export function post(client: ChannelsClient, channelName: string, body: string) {
  return client.trpc.channel.broadcast.mutate({
    channelName,
    event: "message.posted",
    payload: { text: body },
  });
}

export interface InstancePair {
  a: TestServer;
  b: TestServer;
  /** Stops both instances and drops their database. */
  stop(): Promise<void>;
}

/**
 * Two instances ("a" and "b") in this process sharing one fresh Postgres database and one Redis, for
 * what must hold across instances; `env` applies to both.
 */
export async function startInstancePair(
  urls: { adminUrl: string; redisUrl: string },
  env: Record<string, string>,
  databasePrefix: string,
): Promise<InstancePair> {
  const fresh = await createFreshDatabase(urls.adminUrl, databasePrefix);
  const shared = { ...env, REDIS_URL: urls.redisUrl };
  const start = (id: string) =>
    startTestServer({ env: { ...shared, CHANNELS_INSTANCE_ID: id }, database: { url: fresh.url } });
  const [a, b] = await Promise.allSettled([start("a"), start("b")]);
  const stop = async () => {
    await Promise.all([a, b].map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)));
    await fresh.drop();
  };
  if (a.status === "rejected" || b.status === "rejected") {
    await stop();
    throw a.status === "rejected" ? a.reason : (b as PromiseRejectedResult).reason;
  }
  return { a: a.value, b: b.value, stop };
}
