/**
 * 1. Connect storm: N clients connect and subscribe, 100 at a time; connect + first subscription p50/p99.
 *
 * The first storm of 1,000 meets a server that has just started, from a load generator that has
 * just started: both sides' code is cold. It is reported on its own ("cold"), as a fresh instance
 * meets it after a deploy. Then an unmeasured storm of 2,000 finishes warming both sides, and the
 * storms of 1,000 (the bar's) and 5,000 are measured on warm code. It takes that many: per connect,
 * WedSync's server used 0.97, 0.80, 0.55 and 0.37 ms of CPU in four storms of 1,000 in a row, and
 * bare ws's 0.28, 0.23, 0.12 and 0.13 ms (2026-11-30); a warm-up of 50 left both mostly cold.
 * Before each storm the server is left to settle: closing the previous storm's connections goes on
 * for a while after the clients see them closed, and that is not the next storm's work.
 */
import { epochNowMs } from "../clock.ts";
import { dashboardChannel, memberOf } from "../naming.ts";
import { ticksToMs } from "../noise.ts";
import type { Rig } from "../rig.ts";
import { summarize } from "../stats.ts";
import { type MetricSpec, oneInstanceOnly, type Scenario, type ScenarioOptions, sized } from "./types.ts";

const CONCURRENCY = 100;
const CHANNELS = 10;

/** The storms in order; `key` names a storm's metrics, and the warm-up (no key) has none. */
const storms = (options: ScenarioOptions) => [
  { key: "cold", n: sized(options, 1_000), label: "cold" },
  { key: undefined, n: sized(options, 2_000), label: "warm-up" },
  { key: "small", n: sized(options, 1_000), label: "" },
  { key: "large", n: sized(options, 5_000), label: "" },
];

export const connectStorm: Scenario = {
  name: "connect-storm",
  title: "Connect storm: connect + first subscription, concurrency 100",
  metrics: (options) =>
    storms(options).flatMap(({ key: k, n, label }): MetricSpec[] => {
      if (k === undefined) return [];
      const name = label ? `${n} ${label}` : `${n}`;
      const measured = k !== "cold";
      return [
        { key: `${k}.p50`, label: `${name} p50`, unit: "ms", better: "lower", table: measured },
        {
          key: `${k}.p99`,
          label: `${name} p99`,
          unit: "ms",
          better: "lower",
          table: true,
          ratio: k === "small",
        },
        { key: `${k}.max`, label: `${name} max`, unit: "ms", better: "lower" },
        { key: `${k}.wall`, label: `${name} all done`, unit: "ms", better: "lower" },
        { key: `${k}.live`, label: `${name} all live`, unit: "ms", better: "lower" },
        { key: `${k}.failures`, label: `${name} failed`, unit: "count", better: "lower", table: measured },
        { key: `${k}.server-cpu`, label: `${name} server CPU per connect`, unit: "ms", better: "lower" },
        {
          key: `${k}.close-cpu`,
          label: `${name} server CPU per close (until idle)`,
          unit: "ms",
          better: "lower",
        },
        {
          key: `${k}.client-cpu`,
          label: `${name} load generator CPU per connect`,
          unit: "ms",
          better: "lower",
        },
      ];
    }),
  skip: oneInstanceOnly,
  async run(rig, options) {
    const metrics: Record<string, number | null> = {};
    const notes: string[] = [];
    await rig.system.prepareChannels(Array.from({ length: CHANNELS }, (_, i) => dashboardChannel(i)));
    for (const [i, { key: k, n, label }] of storms(options).entries()) {
      options.log(`${n} connections, concurrency ${CONCURRENCY}${label ? ` (${label})` : ""}`);
      const result = await storm(rig, i, n);
      const { failures } = result.metrics;
      if (failures) notes.push(`${label || n} storm: ${failures} failed: ${result.firstError}`);
      if (k !== undefined)
        Object.assign(
          metrics,
          Object.fromEntries(Object.entries(result.metrics).map(([m, v]) => [`${k}.${m}`, v])),
        );
      const closeBefore = rig.cpuTicks().server;
      await rig.closeConnections();
      await rig.settle();
      if (k !== undefined) metrics[`${k}.close-cpu`] = ticksToMs(rig.cpuTicks().server - closeBefore) / n;
    }
    return { metrics, notes };
  },
};

/** One storm: `n` connect + subscribe, `CONCURRENCY` at a time, over the channels in turn. */
async function storm(rig: Rig, index: number, n: number) {
  const conns = Array.from({ length: n }, (_, c) => {
    const channel = dashboardChannel(c % CHANNELS);
    return { user: memberOf(`storm${index}-${c}`, channel), channel, url: rig.urlFor(c) };
  });
  await rig.ensureWorkers(n);
  const cpuBefore = rig.cpuTicks();
  const started = epochNowMs();
  const result = await rig.connect(conns, CONCURRENCY);
  const wall = epochNowMs() - started;
  const cpuAfter = rig.cpuTicks();
  const live = await rig.waitLive(n - result.failures);
  const summary = summarize(result.times);
  const perConnect = (ticks: number) => ticksToMs(ticks) / n;
  return {
    firstError: result.firstError,
    metrics: {
      p50: summary.p50,
      p99: summary.p99,
      max: summary.max,
      wall,
      live: live ? epochNowMs() - started : null,
      failures: result.failures,
      "server-cpu": perConnect(cpuAfter.server - cpuBefore.server),
      "client-cpu": result.cpuMs / n,
    },
  };
}
