/**
 * 8. The Redis hop: the extra delivery latency a message pays for crossing Redis between instances.
 * Every subscriber is on instance 0, under scenario 2's middle load (1,000 subscribers, a broadcast
 * every 50 ms, open loop, latency from the scheduled send time). The same load is published to
 * instance 0 itself ("same instance": an instance hands its own broadcasts to its subscribers
 * in-process, the Redis bus only carries them to the other instances) and to instance 1 ("across
 * Redis": stored by instance 1, published to Redis, received by instance 0). Same servers, store,
 * subscribers and load; only the instance a broadcast enters differs. Phases run same, across,
 * across, same (half the duration each) so drift on a shared machine hits both paths alike.
 * Extra = across minus same, at p50 and p99. One-instance systems measure the same-instance path.
 */
import { dashboardChannel, memberOf, publisherFor } from "../naming.ts";
import { concatSamples, summarize } from "../stats.ts";
import { FANOUT_CASES } from "./fanout-latency.ts";
import { connectSubscribers, measurePhase, type PhaseRun, warmUp } from "./measure.ts";
import { type MetricSpec, type Scenario, sized } from "./types.ts";

const LOAD = FANOUT_CASES.find((c) => c.key === "c1000")!;
/** The instance every subscriber is on, and where "same instance" broadcasts enter. */
const SUBSCRIBER_INSTANCE = 0;
const OTHER_INSTANCE = 1;

/** Where broadcasts enter: `instance`. */
interface Path {
  key: string;
  label: string;
  instance: number;
}
const SAME: Path = { key: "same", label: "same instance", instance: SUBSCRIBER_INSTANCE };
const ACROSS: Path = { key: "across", label: "across Redis", instance: OTHER_INSTANCE };
export const HOP_PATHS: readonly Path[] = [SAME, ACROSS];
/** ABBA: a trend over the measurement weighs on both paths equally. */
const SCHEDULE: Path[] = [SAME, ACROSS, ACROSS, SAME];

const pathSpecs = (path: Path): MetricSpec[] => [
  { key: `${path.key}.p50`, label: `${path.label} p50`, unit: "ms", better: "lower", table: true },
  { key: `${path.key}.p99`, label: `${path.label} p99`, unit: "ms", better: "lower", table: true },
  { key: `${path.key}.max`, label: `${path.label} max`, unit: "ms", better: "lower" },
  { key: `${path.key}.ratio`, label: `${path.label} delivered`, unit: "fraction", better: "higher" },
  { key: `${path.key}.broadcasts`, label: `${path.label} broadcasts`, unit: "count", better: "higher" },
  { key: `${path.key}.server-cpu`, label: `${path.label} server CPU`, unit: "percent", better: "lower" },
  {
    key: `${path.key}.client-cpu`,
    label: `${path.label} load generator CPU`,
    unit: "percent",
    better: "lower",
  },
];

/** One path's phases taken together: latency percentiles over every delivery, counts summed. */
function pathMetrics(path: Path, runs: PhaseRun[]): Record<string, number | null> {
  if (!runs.length) return {};
  const latency = summarize(concatSamples(runs.map((r) => r.stats.latencies)));
  const sum = (of: (run: PhaseRun) => number) => runs.reduce((n, run) => n + of(run), 0);
  const expected = sum((r) => r.stats.expected);
  const orNull = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    [`${path.key}.p50`]: orNull(latency.p50),
    [`${path.key}.p99`]: orNull(latency.p99),
    [`${path.key}.max`]: orNull(latency.max),
    [`${path.key}.ratio`]: expected ? (expected - sum((r) => r.stats.missing)) / expected : null,
    [`${path.key}.broadcasts`]: sum((r) => r.publish.published),
    [`${path.key}.server-cpu`]: sum((r) => r.serverCpu) / runs.length,
    [`${path.key}.client-cpu`]: sum((r) => r.clientCpu) / runs.length,
  };
}

export const redisHop: Scenario = {
  name: "redis-hop",
  title: "Redis hop: delivery latency, broadcasts into the subscribers' instance vs another one",
  metrics: (options) => [
    ...HOP_PATHS.flatMap(pathSpecs),
    { key: "extra.p50", label: "extra p50", unit: "ms", better: "lower", table: true },
    { key: "extra.p99", label: "extra p99", unit: "ms", better: "lower", table: true },
    {
      key: "subscribers",
      label: `subscribers (of ${sized(options, LOAD.subscribers)})`,
      unit: "count",
      better: "higher",
    },
    { key: "missing", label: "missing", unit: "count", better: "lower" },
    { key: "duplicates", label: "duplicates", unit: "count", better: "lower" },
    { key: "misdeliveries", label: "misdelivered", unit: "count", better: "lower" },
  ],
  skip: () => null,
  async run(rig, options) {
    const channel = dashboardChannel(5);
    await rig.system.prepareChannels([channel]);
    const n = sized(options, LOAD.subscribers);
    const paths = rig.instances > OTHER_INSTANCE ? HOP_PATHS : [SAME];
    const schedule = SCHEDULE.filter((path) => paths.includes(path));
    const phaseMs = (options.quick ? 2_000 : 10_000) / (schedule.length / paths.length);
    options.log(
      `${n} subscribers on instance ${SUBSCRIBER_INSTANCE}, a broadcast every ${LOAD.intervalMs} ms, phases ${schedule.map((p) => p.key).join(", ")}`,
    );
    const conns = Array.from({ length: n }, (_, i) => ({
      user: memberOf(`hop-${i}`, channel),
      channel,
      url: SUBSCRIBER_INSTANCE,
    }));
    const plan = (path: Path) => ({
      user: publisherFor("hop-publisher", [channel]),
      channels: [channel],
      urls: [path.instance],
      mode: "open" as const,
      intervalMs: LOAD.intervalMs,
    });
    const connected = await connectSubscribers(rig, options, conns);
    const notes = [...connected.notes];
    for (const path of paths) await warmUp(rig, options, plan(path));
    const runs = new Map<Path, PhaseRun[]>(paths.map((path) => [path, []]));
    for (const path of schedule) {
      options.log(`${path.label}: measuring for ${phaseMs / 1000} s`);
      const run = await measurePhase(rig, options, conns, plan(path), phaseMs);
      runs.get(path)!.push(run);
      notes.push(...run.notes.map((note) => `${path.label}: ${note}`));
    }
    await rig.closeConnections();

    const metrics: Record<string, number | null> = { subscribers: n - connected.failures };
    for (const path of paths) Object.assign(metrics, pathMetrics(path, runs.get(path)!));
    if (paths.includes(ACROSS)) {
      const extra = (p: string) =>
        metrics[`across.${p}`] != null && metrics[`same.${p}`] != null
          ? metrics[`across.${p}`]! - metrics[`same.${p}`]!
          : null;
      metrics["extra.p50"] = extra("p50");
      metrics["extra.p99"] = extra("p99");
      options.log(
        `extra p50 ${metrics["extra.p50"]?.toFixed(2)} ms, p99 ${metrics["extra.p99"]?.toFixed(2)} ms`,
      );
    } else {
      notes.push("one instance: nothing crosses Redis, only the same-instance path is measured");
    }
    const all = [...runs.values()].flat();
    for (const key of ["missing", "duplicates", "misdeliveries"] as const)
      metrics[key] = all.reduce((total, run) => total + run.stats[key], 0);
    return { metrics, notes };
  },
};
