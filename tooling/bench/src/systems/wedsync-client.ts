/** WedSync's client side for the bench: real clients from packages/client with minted tokens. */
import { createTRPCClient, createWSClient, httpBatchLink, retryLink, splitLink, wsLink } from "@trpc/client";
import { type AppRouter, mintToken } from "@wedsync/channels";
import { type ChannelsClient, createChannelsClient, jitteredBackoff } from "@wedsync/client";
import superjson from "superjson";
import WebSocket from "ws";
import { sleep } from "../clock.ts";
import { publisherFor } from "../naming.ts";
import type { BenchUser, ClientConnection, WedSyncClientKind } from "./types.ts";

/** A paid supplier member of `user.suppliers`. */
export const tokenFor = (secret: string, user: BenchUser) =>
  mintToken(secret, {
    sub: user.id,
    role: "supplier",
    tier: "paid",
    suppliers: user.suppliers,
    couples: [],
    venues: [],
  });

function channelParts(name: string) {
  const [scope = "", entity = "", ...rest] = name.split(":");
  return { scope, entity, entityId: rest.join(":") };
}

const FINAL_CODES = new Set(["UNAUTHORIZED", "FORBIDDEN", "BAD_REQUEST", "NOT_FOUND", "PRECONDITION_FAILED"]);

/**
 * packages/client's createChannelsClient, link for link, without its `lazy: { closeMs: 0 }` WebSocket
 * option: with it, every client holding a live subscription re-arms a 0 ms inactivity timer forever
 * (one idle client burns ~10% of a core), which makes the load generator, not the server, the limit.
 * Used only when the bench detects that spin (see chooseClient in wedsync.ts).
 */
function createPlainClient(url: string, token: string): ChannelsClient {
  const base = url.replace(/\/+$/, "");
  const wsClient = createWSClient({
    url: `${base.replace(/^http/, "ws")}/trpc`,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: () => ({ token }),
    retryDelayMs: jitteredBackoff,
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      retryLink({
        retry: ({ op, error, attempts }) =>
          op.type === "subscription" && !FINAL_CODES.has(error.data?.code ?? "") && attempts < 1_000,
        retryDelayMs: jitteredBackoff,
      }),
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: wsClient, transformer: superjson }),
        false: httpBatchLink({
          url: `${base}/trpc`,
          transformer: superjson,
          headers: () => ({ authorization: `Bearer ${token}` }),
        }),
      }),
    ],
  });
  return { trpc, close: () => wsClient.close() };
}

export function openClient(kind: WedSyncClientKind, url: string, token: string): ChannelsClient {
  return kind === "package" ? createChannelsClient({ url, token }) : createPlainClient(url, token);
}

/** CPU (% of one core) this process spends over 1 s while one packages/client client idles on a live subscription. */
export async function idleClientCpu(
  url: string,
  secret: string,
  channel: string,
  supplier: string,
): Promise<number> {
  const client = createChannelsClient({
    url,
    token: await tokenFor(secret, { id: "bench-idle-check", suppliers: [supplier] }),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.trpc.channel.events.subscribe(
        { channelName: channel },
        { onStarted: () => resolve(), onError: reject },
      );
    });
    await sleep(300);
    const before = process.cpuUsage();
    const started = performance.now();
    await sleep(1_000);
    const used = process.cpuUsage(before);
    return ((used.user + used.system) / 1000 / (performance.now() - started)) * 100;
  } finally {
    await client.close();
  }
}

/** channel.create for every name (idempotent), 16 at a time, as a member of their suppliers. */
export async function createChannels(url: string, secret: string, names: string[]) {
  for (let start = 0; start < names.length; start += 500) {
    const batch = names.slice(start, start + 500);
    const client = createChannelsClient({
      url,
      token: await tokenFor(secret, publisherFor("bench-admin", batch)),
    });
    try {
      let next = 0;
      const lane = async () => {
        while (next < batch.length) await client.trpc.channel.create.mutate(channelParts(batch[next++]!));
      };
      await Promise.all(Array.from({ length: 16 }, lane));
    } finally {
      await client.close();
    }
  }
}

/** A gauge from an instance's /metrics (0 when absent). */
export async function scrapeGauge(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/** Subscriptions: tRPC `channel.events` over the WebSocket; broadcasts: `channel.broadcast` over HTTP. */
export async function connectWedSync(
  url: string,
  user: BenchUser,
  secret: string,
  kind: WedSyncClientKind = "package",
): Promise<ClientConnection> {
  const client = openClient(kind, url, await tokenFor(secret, user));
  const subscriptions: Array<{ unsubscribe(): void }> = [];
  let callback: (channel: string, text: string) => void = () => {};
  let errors = 0;
  let resets = 0;
  return {
    subscribe: (channelName) =>
      new Promise((resolve, reject) => {
        let started = false;
        const subscription = client.trpc.channel.events.subscribe(
          { channelName },
          {
            onStarted: () => {
              started = true;
              resolve();
            },
            onData: ({ data }) => {
              if (data.type === "message") callback(data.channel, (data.payload as { text: string }).text);
              else resets++;
            },
            onError: (error) => {
              errors++;
              if (!started) reject(error);
            },
          },
        );
        subscriptions.push(subscription);
      }),
    onMessage: (cb) => {
      callback = cb;
    },
    publish: async (channelName, text) => {
      await client.trpc.channel.broadcast.mutate({ channelName, event: "message.posted", payload: { text } });
    },
    close: async () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
      await client.close();
    },
    problems: () => ({ errors, resets }),
  };
}
