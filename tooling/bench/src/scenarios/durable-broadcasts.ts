/**
 * 7. Durable broadcasts on one channel (WedSync only): publishers keep 1, then 10, then 50
 * broadcasts in flight on one channel, over 10 client connections (spread over the instances), as
 * fast as the server acknowledges them, with nobody subscribed. Acknowledged broadcasts/s and ack
 * p50/p99 per level. Afterwards the channel is replayed from its store and checked: every
 * acknowledged broadcast stored exactly once, at the seq its acknowledgement returned, seqs gap-free.
 */
import { checkDurability, type DurabilityCheck, storedExactlyOnce } from "../durability-check.ts";
import { formatValue } from "../format.ts";
import { dashboardChannel, publisherFor } from "../naming.ts";
import { summarize } from "../stats.ts";
import type { RunningSystem } from "../systems/types.ts";
import type { PublishResult } from "../worker-protocol.ts";
import { loadMeter, loadMetricSpecs, warmUp } from "./measure.ts";
import type { MetricSpec, Scenario, ScenarioOptions, ScenarioResult } from "./types.ts";

export const INFLIGHT_LEVELS = [1, 10, 50] as const;
const PUBLISHER_CONNECTIONS = 10;
const WARM_UP_INFLIGHT = 10;

export const levelKey = (inflight: number) => `i${inflight}`;

const CHECK_METRICS: Array<{ key: string; label: string; of: (check: DurabilityCheck) => number }> = [
  { key: "acked", label: "acknowledged, checked", of: (c) => c.acked },
  { key: "missing", label: "acknowledged, not stored", of: (c) => c.missing },
  { key: "duplicates", label: "stored twice", of: (c) => c.duplicates },
  { key: "seq-mismatches", label: "stored at another seq", of: (c) => c.seqMismatches },
  { key: "seq-gaps", label: "seq gaps", of: (c) => c.seqGaps },
  { key: "replay-resets", label: "replay resets", of: (c) => c.resets },
  { key: "unacked-stored", label: "failed at the client, stored", of: (c) => c.unackedStored },
];

export const durableBroadcasts: Scenario = {
  name: "durable-broadcasts",
  title: "Durable broadcasts: 1 channel, acknowledged broadcasts/s by broadcasts in flight",
  metrics: () => [
    ...INFLIGHT_LEVELS.flatMap((n): MetricSpec[] => {
      const key = levelKey(n);
      return [
        { key: `${key}.rate`, label: `${n} in flight acked/s`, unit: "per-s", better: "higher", table: true },
        { key: `${key}.ack-p50`, label: "ack p50", unit: "ms", better: "lower", table: true },
        { key: `${key}.ack-p99`, label: "ack p99", unit: "ms", better: "lower", table: true },
        { key: `${key}.errors`, label: `${n} in flight failed broadcasts`, unit: "count", better: "lower" },
        ...loadMetricSpecs(`${key}.`, `${n} in flight `),
      ];
    }),
    { key: "peak-rate", label: "best acked/s", unit: "per-s", better: "higher" },
    { key: "exactly-once", label: "stored once", unit: "pass", better: "higher", table: true },
    ...CHECK_METRICS.map(
      ({ key, label }): MetricSpec => ({
        key,
        label,
        unit: "count",
        better: key === "acked" ? "higher" : "lower",
      }),
    ),
  ],
  skip: (system) => (system.isWedSync ? null : "no durable store"),
  async run(rig, options) {
    const channel = dashboardChannel(4);
    await rig.system.prepareChannels([channel]);
    const durationMs = options.quick ? 2_000 : 10_000;
    const plan = (inflight: number) => ({
      user: publisherFor("durable-publisher", [channel]),
      channels: [channel],
      urls: rig.system.urls.map((_, i) => i),
      connections: PUBLISHER_CONNECTIONS,
      mode: "closed" as const,
      inflight,
    });
    options.log(`one channel, nobody subscribed, ${PUBLISHER_CONNECTIONS} publisher connections`);
    const runs: Array<{ phase: string; publish: PublishResult }> = [
      await warmUp(rig, options, plan(WARM_UP_INFLIGHT)),
    ];
    const metrics: Record<string, number | null> = {};
    const notes: string[] = [];
    for (const inflight of INFLIGHT_LEVELS) {
      const key = levelKey(inflight);
      options.log(`${inflight} in flight: measuring for ${durationMs / 1000} s`);
      const { phase } = await rig.newPhase("durable");
      const load = await loadMeter(rig);
      const publish = await rig.publish({ ...plan(inflight), phase, durationMs });
      const usage = await load.stop();
      runs.push({ phase, publish });
      const rate = (publish.published - publish.errors) / ((publish.endedAt - publish.startedAt) / 1000);
      const ack = summarize(publish.acks);
      metrics[`${key}.rate`] = rate;
      metrics[`${key}.ack-p50`] = ack.count ? ack.p50 : null;
      metrics[`${key}.ack-p99`] = ack.count ? ack.p99 : null;
      metrics[`${key}.errors`] = publish.errors;
      metrics[`${key}.server-cpu`] = usage.serverCpu;
      metrics[`${key}.client-cpu`] = usage.clientCpu;
      metrics[`${key}.store-ms`] = usage.storeMs;
      options.log(
        `${inflight} in flight: ${formatValue(rate, "per-s")} acked/s, ack p50 ${formatValue(ack.p50, "ms")} ms, p99 ${formatValue(ack.p99, "ms")} ms`,
      );
      if (publish.errors)
        notes.push(`${inflight} in flight: ${publish.errors} failed: ${publish.firstError}`);
      notes.push(...usage.notes.map((n) => `${inflight} in flight: ${n}`));
    }
    metrics["peak-rate"] = Math.max(...INFLIGHT_LEVELS.map((n) => metrics[`${levelKey(n)}.rate`] ?? 0));
    const verified = await verifyStore(rig.system, channel, runs, options);
    return { metrics: { ...metrics, ...verified.metrics }, notes: [...notes, ...verified.notes] };
  },
};

/** Replays the channel from the store and checks it against the acknowledgements. */
async function verifyStore(
  system: RunningSystem,
  channel: string,
  runs: Array<{ phase: string; publish: PublishResult }>,
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const untilSeq = runs
    .flatMap((r) => r.publish.storedSeqs[channel] ?? [])
    .reduce((highest, seq) => Math.max(highest, seq), 0);
  options.log(`replaying the channel from its store (acknowledged up to seq ${untilSeq})`);
  let check: DurabilityCheck;
  try {
    if (!system.replayChannel) throw new Error("this system cannot replay a channel");
    check = checkDurability(channel, runs, await system.replayChannel(channel, untilSeq));
  } catch (error) {
    const why = (error as Error).message.split("\n")[0];
    return { metrics: { "exactly-once": 0 }, notes: [`the store could not be checked: ${why}`] };
  }
  options.log(CHECK_METRICS.map(({ label, of }) => `${of(check)} ${label}`).join(", "));
  return {
    metrics: {
      "exactly-once": storedExactlyOnce(check) ? 1 : 0,
      ...Object.fromEntries(CHECK_METRICS.map(({ key, of }) => [key, of(check)])),
    },
    notes: check.unackedStored
      ? [`${check.unackedStored} broadcasts failed at the client but were stored (allowed)`]
      : [],
  };
}
