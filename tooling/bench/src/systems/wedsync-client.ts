/** WedSync's client side for the bench: real clients from packages/client with minted tokens. */
import { mintToken } from "@wedsync/channels";
import { type ChannelsClient, createChannelsClient } from "@wedsync/client";
import { sleep } from "../clock.ts";
import { publisherFor } from "../naming.ts";
import type { BenchUser, ChannelReplay, ClientConnection } from "./types.ts";

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

export const openClient = (url: string, token: string): ChannelsClient =>
  createChannelsClient({ url, token });

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

/** How long a replay waits for more once it has reached `untilSeq`, and at most in all. */
const REPLAY_QUIET_MS = 1_000;
const REPLAY_TIMEOUT_MS = 120_000;

/**
 * Every stored message of `name`, oldest first, read back the way a client resuming from the very
 * start gets them: `channel.events` with `lastEventId` `<channel id>:0` replays the store. Ends once
 * `untilSeq` has arrived and nothing more comes for a second (or after 2 minutes, with what came).
 */
export async function replayChannel(
  url: string,
  secret: string,
  name: string,
  untilSeq: number,
): Promise<ChannelReplay> {
  const client = openClient(url, await tokenFor(secret, publisherFor("bench-replay", [name])));
  const replay: ChannelReplay = { messages: [], resets: 0 };
  try {
    // channel.create is idempotent: for an existing channel it answers with the channel's row.
    const { id } = await client.trpc.channel.create.mutate(channelParts(name));
    let lastArrival = Date.now();
    let failure: Error | undefined;
    const subscription = client.trpc.channel.events.subscribe(
      { channelName: name, lastEventId: `${id}:0` },
      {
        onData: ({ data }) => {
          lastArrival = Date.now();
          if (data.type === "message")
            replay.messages.push({ seq: data.seq, text: (data.payload as { text: string }).text });
          else replay.resets++;
        },
        onError: (error) => {
          failure = error;
        },
      },
    );
    const deadline = Date.now() + REPLAY_TIMEOUT_MS;
    const reached = () => (replay.messages.at(-1)?.seq ?? 0) >= untilSeq;
    while (!failure && Date.now() < deadline && !(reached() && Date.now() - lastArrival > REPLAY_QUIET_MS))
      await sleep(100);
    subscription.unsubscribe();
    if (failure) throw failure;
    return replay;
  } finally {
    await client.close();
  }
}

/** Unlabelled samples from an instance's /metrics, in the order of `names` (0 when absent). */
async function scrapeSamples(baseUrl: string, names: readonly string[]): Promise<number[]> {
  const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  return names.map((name) => {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return match ? Number(match[1]) : 0;
  });
}

/** Summed over `urls`, per name of `names`. */
export async function scrapeTotals(urls: readonly string[], names: readonly string[]): Promise<number[]> {
  const perInstance = await Promise.all(urls.map((url) => scrapeSamples(url, names)));
  return names.map((_, i) => perInstance.reduce((sum, samples) => sum + samples[i]!, 0));
}

/**
 * Subscriptions: tRPC `channel.events` over the WebSocket; broadcasts: `channel.broadcast` over the
 * same socket (`calls: "socket"`), as the baselines publish over theirs.
 */
export async function connectWedSync(
  url: string,
  user: BenchUser,
  secret: string,
  token?: string,
): Promise<ClientConnection> {
  const client = createChannelsClient({
    url,
    token: token ?? (await tokenFor(secret, user)),
    calls: "socket",
  });
  // Made with the first: an empty array's first push reserves room for 17, kept by every client.
  let subscriptions: Array<{ unsubscribe(): void }> | undefined;
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
        if (subscriptions === undefined) subscriptions = [subscription];
        else subscriptions.push(subscription);
      }),
    onMessage: (cb) => {
      callback = cb;
    },
    publish: async (channelName, text) => {
      const stored = await client.trpc.channel.broadcast.mutate({
        channelName,
        event: "message.posted",
        payload: { text },
      });
      return stored.seq;
    },
    close: async () => {
      for (const subscription of subscriptions ?? []) subscription.unsubscribe();
      await client.close();
    },
    problems: () => ({ errors, resets }),
  };
}
