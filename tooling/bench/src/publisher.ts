/**
 * Sends the broadcasts of one measurement. Open loop: one broadcast every `intervalMs`, stamped with
 * its scheduled time and sent even if earlier ones are unacknowledged, so a server (or sender) that
 * falls behind shows up as latency. Closed loop: `inflight` senders each publish as soon as their
 * previous broadcast is acknowledged, optionally held to `window` broadcasts ahead of a probe
 * subscriber so the backlog (and the run) stays bounded while the server is saturated.
 */
import { epochNowMs, sleep, withTimeout } from "./clock.ts";
import { markText, readText } from "./message-text.ts";
import { SampleBuffer } from "./stats.ts";
import { connectClient } from "./systems/index.ts";
import type { ClientConfig, ClientConnection } from "./systems/types.ts";
import type { PublishPlan, PublishResult } from "./worker-protocol.ts";

const ACK_TIMEOUT_MS = 30_000;

export async function runPublisher(
  config: ClientConfig,
  urls: string[],
  plan: PublishPlan,
): Promise<PublishResult> {
  const connections = plan.connections ?? plan.urls.length;
  const targets = await Promise.all(
    Array.from({ length: connections }, (_, k) =>
      connectClient(config, urls[plan.urls[k % plan.urls.length]!]!, plan.user),
    ),
  );
  const probe = plan.window ? await openProbe(config, urls[plan.urls[0]!]!, plan) : undefined;
  const sent: Record<string, number> = {};
  const failed: Record<string, number[]> = {};
  const acks = new SampleBuffer();
  const storedSeqs: Record<string, number[]> = {};
  let errors = 0;
  let firstError: string | undefined;
  let published = 0;

  const publishOne = (channelIndex: number, scheduledMs: number): Promise<void> => {
    const channel = plan.channels[channelIndex % plan.channels.length]!;
    const seq = (sent[channel] ?? 0) + 1;
    sent[channel] = seq;
    const target = targets[Math.floor(Math.random() * targets.length)]!;
    const text = markText({ seq, scheduledMs, phase: plan.phase, channel });
    const sentAt = epochNowMs();
    published++;
    return withTimeout(target.publish(channel, text), ACK_TIMEOUT_MS, "broadcast ack").then(
      (storedSeq) => {
        acks.push(epochNowMs() - sentAt);
        if (storedSeq === undefined) return;
        const seqs = storedSeqs[channel] ?? [];
        seqs[seq - 1] = storedSeq;
        storedSeqs[channel] = seqs;
      },
      (error: Error) => {
        errors++;
        firstError ??= error.message;
        failed[channel] = [...(failed[channel] ?? []), seq];
      },
    );
  };

  const startedAt = epochNowMs();
  const endAt = startedAt + plan.durationMs;
  let maxLagMs = 0;
  const pending = new Set<Promise<void>>();
  if (plan.mode === "open") {
    const interval = plan.intervalMs ?? 10;
    for (let k = 0; ; k++) {
      const scheduled = startedAt + k * interval;
      if (scheduled >= endAt) break;
      const wait = scheduled - epochNowMs();
      if (wait > 1) await sleep(wait - 0.5);
      while (epochNowMs() < scheduled) {
        // Spin the last half millisecond: timers are coarse.
      }
      maxLagMs = Math.max(maxLagMs, epochNowMs() - scheduled);
      const p = publishOne(k, scheduled);
      pending.add(p);
      p.finally(() => pending.delete(p));
    }
  } else {
    let next = 0;
    const lane = async () => {
      while (epochNowMs() < endAt) {
        if (probe) await probe.waitUntil(published - (plan.window ?? 0), endAt);
        if (epochNowMs() >= endAt) break;
        await publishOne(next++, epochNowMs());
      }
    };
    await Promise.all(Array.from({ length: plan.inflight ?? 1 }, lane));
  }
  const endedAt = epochNowMs();
  await Promise.allSettled([...pending]);
  await Promise.allSettled([...targets, ...(probe ? [probe.connection] : [])].map((c) => c.close()));
  return {
    sent,
    failed,
    published,
    startedAt,
    endedAt,
    acks: acks.toArray(),
    storedSeqs: Object.fromEntries(
      Object.entries(storedSeqs).map(([channel, seqs]) => [channel, Array.from(seqs, (seq) => seq ?? 0)]),
    ),
    maxLagMs,
    errors,
    ...(firstError ? { firstError } : {}),
  };
}

/** A subscriber on channels[0] (subscribed after everyone else) that tells how far deliveries got. */
async function openProbe(config: ClientConfig, url: string, plan: PublishPlan) {
  const connection: ClientConnection = await connectClient(config, url, plan.user);
  let received = 0;
  let wake: (() => void) | undefined;
  connection.onMessage((_channel, text) => {
    if (readText(text)?.phase !== plan.phase) return;
    received++;
    wake?.();
  });
  await connection.subscribe(plan.channels[0]!);
  await sleep(200);
  return {
    connection,
    /** Resolves once the probe has received at least `count` messages, or at `deadline`. */
    async waitUntil(count: number, deadline: number) {
      while (received < count && epochNowMs() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
        wake = undefined;
      }
    },
  };
}
