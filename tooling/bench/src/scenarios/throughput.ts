/**
 * 3. Throughput: 1,000 subscribers on one channel, broadcasts sent as fast as the server acknowledges
 * them (4 in flight), held to 10 broadcasts ahead of the last subscriber so the backlog stays bounded.
 */
import { dashboardChannel, memberOf, publisherFor } from "../naming.ts";
import { deliveryMetrics, loadMetricSpecs, measureDelivery } from "./measure.ts";
import { type Scenario, sized } from "./types.ts";

export const throughput: Scenario = {
  name: "throughput",
  title: "Throughput: 1 channel, publish as fast as acknowledged",
  metrics: (options) => {
    const n = sized(options, 1_000);
    return [
      {
        key: "rate",
        label: `${n} subs deliveries/s`,
        unit: "per-s",
        better: "higher",
        table: true,
        ratio: true,
      },
      { key: "p50", label: "p50", unit: "ms", better: "lower", table: true },
      { key: "p99", label: "p99", unit: "ms", better: "lower", table: true },
      { key: "max", label: "max", unit: "ms", better: "lower" },
      { key: "broadcasts-per-s", label: "broadcasts/s", unit: "per-s", better: "higher", table: true },
      { key: "ratio", label: "delivered", unit: "fraction", better: "higher", table: true },
      { key: "missing", label: "missing", unit: "count", better: "lower" },
      { key: "duplicates", label: "duplicates", unit: "count", better: "lower" },
      { key: "misdeliveries", label: "misdelivered", unit: "count", better: "lower" },
      ...loadMetricSpecs(),
    ];
  },
  skip: () => null,
  async run(rig, options) {
    const channel = dashboardChannel(2);
    await rig.system.prepareChannels([channel]);
    const n = sized(options, 1_000);
    options.log(`${n} subscribers, closed loop`);
    const conns = Array.from({ length: n }, (_, i) => ({
      user: memberOf(`tp-${i}`, channel),
      channel,
      url: rig.urlFor(i),
    }));
    const run = await measureDelivery(
      rig,
      options,
      conns,
      {
        user: publisherFor("tp-publisher", [channel]),
        channels: [channel],
        urls: rig.system.urls.map((_, i) => i),
        mode: "closed",
        inflight: 4,
        window: 10,
      },
      options.quick ? 2_000 : 10_000,
    );
    const metrics = deliveryMetrics(run);
    metrics["broadcasts-per-s"] =
      run.publish.published / ((run.publish.endedAt - run.publish.startedAt) / 1000);
    return { metrics, notes: run.notes };
  },
};
