/**
 * 2. Fan-out latency at a fixed 20k deliveries/s: 200 subscribers with a broadcast every 10 ms, 1,000
 * every 50 ms, 5,000 every 250 ms. Latency runs from the scheduled send time.
 */
import { dashboardChannel, memberOf, publisherFor } from "../naming.ts";
import { summarize } from "../stats.ts";
import { deliveryMetrics, loadMetricSpecs, measureDelivery } from "./measure.ts";
import type { MetricSpec, Scenario, ScenarioOptions } from "./types.ts";
import { sized } from "./types.ts";

export const FANOUT_CASES = [
  { key: "c200", subscribers: 200, intervalMs: 10 },
  { key: "c1000", subscribers: 1_000, intervalMs: 50 },
  { key: "c5000", subscribers: 5_000, intervalMs: 250 },
] as const;

const casesFor = (options: ScenarioOptions) =>
  FANOUT_CASES.map((c) => ({ ...c, subscribers: sized(options, c.subscribers) }));

export const fanoutLatency: Scenario = {
  name: "fanout-latency",
  title: "Fan-out latency at 20k deliveries/s (from the scheduled send time)",
  metrics: (options) =>
    casesFor(options).flatMap((c): MetricSpec[] => {
      const name = `${c.subscribers}@${c.intervalMs}ms`;
      const headline = c.key === "c1000";
      return [
        { key: `${c.key}.p50`, label: `${name} p50`, unit: "ms", better: "lower", table: true },
        { key: `${c.key}.p95`, label: `${name} p95`, unit: "ms", better: "lower" },
        {
          key: `${c.key}.p99`,
          label: `${name} p99`,
          unit: "ms",
          better: "lower",
          table: true,
          ratio: headline,
        },
        { key: `${c.key}.max`, label: `${name} max`, unit: "ms", better: "lower" },
        { key: `${c.key}.rate`, label: `${name} deliveries/s`, unit: "per-s", better: "higher" },
        {
          key: `${c.key}.ratio`,
          label: `${name} delivered`,
          unit: "fraction",
          better: "higher",
          table: true,
        },
        { key: `${c.key}.missing`, label: `${name} missing`, unit: "count", better: "lower" },
        { key: `${c.key}.duplicates`, label: `${name} duplicates`, unit: "count", better: "lower" },
        { key: `${c.key}.misdeliveries`, label: `${name} misdelivered`, unit: "count", better: "lower" },
        { key: `${c.key}.broadcasts`, label: `${name} broadcasts`, unit: "count", better: "higher" },
        { key: `${c.key}.ack-p99`, label: `${name} ack p99`, unit: "ms", better: "lower" },
        { key: `${c.key}.sender-lag`, label: `${name} sender lag max`, unit: "ms", better: "lower" },
        ...loadMetricSpecs(`${c.key}.`, `${name} `),
      ];
    }),
  skip: () => null,
  async run(rig, options) {
    const channel = dashboardChannel(1);
    await rig.system.prepareChannels([channel]);
    const metrics: Record<string, number | null> = {};
    const notes: string[] = [];
    for (const c of casesFor(options)) {
      options.log(`${c.subscribers} subscribers, a broadcast every ${c.intervalMs} ms`);
      const conns = Array.from({ length: c.subscribers }, (_, i) => ({
        user: memberOf(`fan-${c.key}-${i}`, channel),
        channel,
        url: rig.urlFor(i),
      }));
      const run = await measureDelivery(
        rig,
        options,
        conns,
        {
          user: publisherFor("fan-publisher", [channel]),
          channels: [channel],
          urls: rig.system.urls.map((_, i) => i),
          mode: "open",
          intervalMs: c.intervalMs,
        },
        options.quick ? 2_000 : 10_000,
      );
      Object.assign(metrics, deliveryMetrics(run, `${c.key}.`));
      metrics[`${c.key}.ack-p99`] = run.publish.acks.length ? summarize(run.publish.acks).p99 : null;
      metrics[`${c.key}.sender-lag`] = run.publish.maxLagMs;
      notes.push(...run.notes.map((n) => `${c.subscribers} subscribers: ${n}`));
    }
    return { metrics, notes };
  },
};
