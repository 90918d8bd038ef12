/** The measurement most scenarios share: subscribers connect, a publisher sends, deliveries are counted. */

import { ticksToPercent } from "../noise.ts";
import type { Rig } from "../rig.ts";
import { summarize } from "../stats.ts";
import {
  type ConnSpec,
  type DeliveryStats,
  type PublishPlan,
  type PublishResult,
  TIMELINE_BUCKET_MS,
} from "../worker-protocol.ts";
import type { MetricSpec, ScenarioOptions } from "./types.ts";

/** One measured publish run over subscribers that are already connected. */
export interface PhaseRun {
  publish: PublishResult;
  stats: DeliveryStats;
  /** % of one core used while the publisher ran: the server(s), and the load generators. */
  serverCpu: number;
  clientCpu: number;
  /** Mean ms a broadcast stored meanwhile waited for the store (null: the system does not tell). */
  storeMs: number | null;
  notes: string[];
}

export interface DeliveryRun extends PhaseRun {
  connectFailures: number;
}

/** Load-generator CPU (% of its one core) from which a measurement is flagged as client-bound. */
const CLIENT_SATURATED = 90;

const CONNECT_CONCURRENCY = 100;

/** Connects `conns`, warms up with the same plan, then measures one publish run and drains it. */
export async function measureDelivery(
  rig: Rig,
  options: ScenarioOptions,
  conns: ConnSpec[],
  plan: Omit<PublishPlan, "phase" | "durationMs">,
  durationMs: number,
  during?: () => Promise<void>,
): Promise<DeliveryRun> {
  const connected = await connectSubscribers(rig, options, conns);
  await warmUp(rig, options, plan);
  options.log(`warmed up; measuring for ${durationMs / 1000} s`);
  const run = await measurePhase(rig, options, conns, plan, durationMs, during);
  await rig.closeConnections();
  return { ...run, connectFailures: connected.failures, notes: [...connected.notes, ...run.notes] };
}

/** Opens and subscribes `conns`, 100 at a time, and waits until the server reports them live. */
export async function connectSubscribers(
  rig: Rig,
  options: ScenarioOptions,
  conns: ConnSpec[],
): Promise<{ failures: number; notes: string[] }> {
  const notes: string[] = [];
  const connected = await rig.connect(conns, CONNECT_CONCURRENCY);
  options.log(
    `${conns.length - connected.failures} subscribers connected${connected.failures ? `, ${connected.failures} failed` : ""}`,
  );
  if (connected.failures) notes.push(`${connected.failures} connections failed: ${connected.firstError}`);
  if (!(await rig.waitLive(conns.length - connected.failures)))
    notes.push("the server did not report every subscription live within 30 s");
  return { failures: connected.failures, notes };
}

/** Publishes `plan` briefly, unmeasured (first connections, JIT, pools), and lets it drain. */
export async function warmUp(
  rig: Rig,
  options: ScenarioOptions,
  plan: Omit<PublishPlan, "phase" | "durationMs">,
): Promise<{ phase: string; publish: PublishResult }> {
  const { phase } = await rig.newPhase("warm");
  const publish = await rig.publish({ ...plan, phase, durationMs: options.quick ? 500 : 1_000 });
  await rig.drain(Number.POSITIVE_INFINITY, 3_000, 300);
  return { phase, publish };
}

/**
 * Starts counting CPU of the server(s) and the load generators, and the broadcasts the server(s) stored
 * with their wait for the store; `stop()` gives % of one core each and the mean wait in ms.
 */
export async function loadMeter(rig: Rig) {
  const storeStart = await rig.system.storeWait?.();
  const start = rig.cpuTicks();
  return {
    async stop() {
      const end = rig.cpuTicks();
      const storeEnd = await rig.system.storeWait?.();
      const serverCpu = ticksToPercent(end.server - start.server, end.at - start.at);
      const clientCpu = ticksToPercent(end.clients - start.clients, end.at - start.at);
      const stored = storeStart && storeEnd ? storeEnd.broadcasts - storeStart.broadcasts : 0;
      const storeMs =
        storeStart && storeEnd && stored > 0
          ? ((storeEnd.seconds - storeStart.seconds) / stored) * 1000
          : null;
      const notes =
        clientCpu >= CLIENT_SATURATED
          ? [`the load generators used ${Math.round(clientCpu)}% of their core: client-bound`]
          : [];
      return { serverCpu, clientCpu, storeMs, notes };
    },
  };
}

/** One measured publish run to the connected subscribers (`conns`): publish, drain, collect. */
export async function measurePhase(
  rig: Rig,
  options: ScenarioOptions,
  conns: ConnSpec[],
  plan: Omit<PublishPlan, "phase" | "durationMs">,
  durationMs: number,
  during?: () => Promise<void>,
): Promise<PhaseRun> {
  const perChannel = new Map<string, number>();
  for (const c of conns) perChannel.set(c.channel, (perChannel.get(c.channel) ?? 0) + 1);
  const measured = await rig.newPhase("m");
  const load = await loadMeter(rig);
  const [publish] = await Promise.all([
    rig.publish({ ...plan, phase: measured.phase, durationMs }),
    during?.(),
  ]);
  const { serverCpu, clientCpu, storeMs, notes } = await load.stop();
  let expected = 0;
  for (const [channel, subscribers] of perChannel) {
    expected += ((publish.sent[channel] ?? 0) - (publish.failed[channel]?.length ?? 0)) * subscribers;
  }
  await rig.drain(expected, options.quick ? 5_000 : 10_000);
  const stats = await rig.stats({ sent: publish.sent, failed: publish.failed });
  options.log(`${publish.published} broadcasts, ${stats.deliveries}/${stats.expected} deliveries`);
  if (publish.errors) notes.push(`${publish.errors} broadcasts failed: ${publish.firstError}`);
  if (stats.errors) notes.push(`${stats.errors} subscription errors`);
  if (stats.resets) notes.push(`${stats.resets} stream resets`);
  return {
    publish,
    stats: { ...stats, timeline: rebase(stats.timeline, measured.startedAt, publish) },
    serverCpu,
    clientCpu,
    storeMs,
    notes,
  };
}

/** Keeps the timeline buckets that fall inside the publish window. */
function rebase(timeline: number[], phaseStart: number, publish: PublishResult): number[] {
  const first = Math.floor((publish.startedAt - phaseStart) / TIMELINE_BUCKET_MS);
  const last = Math.ceil((publish.endedAt - phaseStart) / TIMELINE_BUCKET_MS);
  return timeline.slice(Math.max(0, first), last);
}

/** Deliveries per second while the publisher ran (deliveries that arrived in the window). */
export function deliveryRate(run: PhaseRun): number {
  const inWindow = run.stats.timeline.reduce((a, b) => a + b, 0);
  return inWindow / ((run.publish.endedAt - run.publish.startedAt) / 1000);
}

/** What loadMeter measured while the publisher ran, as metric specs (CPU as % of one core). */
export const loadMetricSpecs = (prefix = "", label = ""): MetricSpec[] => [
  { key: `${prefix}server-cpu`, label: `${label}server CPU`, unit: "percent", better: "lower" },
  { key: `${prefix}client-cpu`, label: `${label}load generator CPU`, unit: "percent", better: "lower" },
  { key: `${prefix}store-ms`, label: `${label}store wait per broadcast`, unit: "ms", better: "lower" },
];

/** The usual delivery metrics under `prefix`. */
export function deliveryMetrics(run: PhaseRun, prefix = ""): Record<string, number | null> {
  const latency = summarize(run.stats.latencies);
  const orNull = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    [`${prefix}p50`]: orNull(latency.p50),
    [`${prefix}p95`]: orNull(latency.p95),
    [`${prefix}p99`]: orNull(latency.p99),
    [`${prefix}max`]: orNull(latency.max),
    [`${prefix}rate`]: deliveryRate(run),
    // Acknowledged broadcasts that arrived (deliveries of broadcasts whose ack timed out do not count).
    [`${prefix}ratio`]: run.stats.expected
      ? (run.stats.expected - run.stats.missing) / run.stats.expected
      : null,
    [`${prefix}missing`]: run.stats.missing,
    [`${prefix}duplicates`]: run.stats.duplicates,
    [`${prefix}misdeliveries`]: run.stats.misdeliveries,
    [`${prefix}broadcasts`]: run.publish.published,
    [`${prefix}server-cpu`]: run.serverCpu,
    [`${prefix}client-cpu`]: run.clientCpu,
    [`${prefix}store-ms`]: run.storeMs,
  };
}
