/**
 * The seed's own targets, measured beside a running load (WedSync only): at a steady rate, create
 * a channel, queue a subscription (channel.subscribe), and open a new connection with its first
 * subscription. Each operation is a new user with a fresh token, as a new visitor would be.
 */
import { epochNowMs, sleep, withTimeout } from "./clock.ts";
import { SampleBuffer } from "./stats.ts";
import { connectWedSync, openClient, tokenFor } from "./systems/wedsync-client.ts";
import type { SeedProbePlan, SeedProbeResult } from "./worker-protocol.ts";

const OP_TIMEOUT_MS = 30_000;

export async function runSeedProbes(
  secret: string,
  urls: string[],
  plan: SeedProbePlan,
): Promise<SeedProbeResult> {
  const create = new SampleBuffer();
  const subscribe = new SampleBuffer();
  const connect = new SampleBuffer();
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;

  const timed = async (samples: SampleBuffer, op: () => Promise<unknown>) => {
    const started = epochNowMs();
    try {
      await withTimeout(op(), OP_TIMEOUT_MS, "seed probe");
      samples.push(epochNowMs() - started);
    } catch (error) {
      errors++;
      firstError ??= (error as Error).message;
    }
  };
  const clientFor = async (sub: string, url: string) =>
    openClient(url, await tokenFor(secret, { id: sub, suppliers: [plan.supplier] }));

  const round = async (i: number) => {
    const url = urls[plan.urls[i % plan.urls.length]!]!;
    const user = `${plan.prefix}-${i}`;
    const client = await clientFor(user, url);
    try {
      await timed(create, () =>
        client.trpc.channel.create.mutate({
          scope: "collaboration",
          entity: plan.supplier,
          entityId: `${plan.prefix}${i}`,
        }),
      );
      await timed(subscribe, () => client.trpc.channel.subscribe.mutate({ channelName: plan.channel }));
    } finally {
      await client.close();
    }
    const connection = await connectWedSync(url, { id: `${user}-live`, suppliers: [plan.supplier] }, secret);
    await timed(connect, () => connection.subscribe(plan.channel));
    await connection.close();
  };

  const started = epochNowMs();
  const rounds: Promise<void>[] = [];
  while (epochNowMs() - started < plan.durationMs) {
    rounds.push(round(n++));
    await sleep(plan.everyMs);
  }
  await Promise.allSettled(rounds);
  return {
    create: create.toArray(),
    subscribe: subscribe.toArray(),
    connect: connect.toArray(),
    errors,
    ...(firstError ? { firstError } : {}),
  };
}
