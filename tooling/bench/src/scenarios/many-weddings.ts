/**
 * 4. Many weddings: 2,000 clients across 500 channels (4 per wedding), broadcasts round-robin over
 * the channels as fast as acknowledged (8 in flight). Every message must reach exactly its own channel.
 */
import { memberOf, publisherFor, weddingChannel } from "../naming.ts";
import { deliveryMetrics, loadMetricSpecs, measureDelivery } from "./measure.ts";
import { type Scenario, type ScenarioOptions, sized } from "./types.ts";

const shape = (options: ScenarioOptions) => ({
  clients: sized(options, 2_000),
  channels: sized(options, 500),
  suppliers: sized(options, 50),
});

export const manyWeddings: Scenario = {
  name: "many-weddings",
  title: "Many weddings: clients spread over many channels, no cross-talk",
  metrics: (options) => {
    const { clients, channels } = shape(options);
    return [
      {
        key: "rate",
        label: `${clients}/${channels}ch deliveries/s`,
        unit: "per-s",
        better: "higher",
        table: true,
        ratio: true,
      },
      { key: "p50", label: "p50", unit: "ms", better: "lower", table: true },
      { key: "p99", label: "p99", unit: "ms", better: "lower", table: true },
      { key: "max", label: "max", unit: "ms", better: "lower" },
      { key: "misdeliveries", label: "misdelivered", unit: "count", better: "lower", table: true },
      { key: "missing", label: "missing", unit: "count", better: "lower", table: true },
      { key: "duplicates", label: "duplicates", unit: "count", better: "lower", table: true },
      { key: "ratio", label: "delivered", unit: "fraction", better: "higher" },
      { key: "broadcasts", label: "broadcasts", unit: "count", better: "higher" },
      ...loadMetricSpecs(),
    ];
  },
  skip: () => null,
  async run(rig, options) {
    const { clients, channels, suppliers } = shape(options);
    const names = Array.from({ length: channels }, (_, k) => weddingChannel(k, suppliers));
    await rig.system.prepareChannels(names);
    options.log(`${clients} clients on ${channels} channels`);
    const conns = Array.from({ length: clients }, (_, i) => {
      const channel = names[i % channels]!;
      return { user: memberOf(`wed-${i}`, channel), channel, url: rig.urlFor(i) };
    });
    const run = await measureDelivery(
      rig,
      options,
      conns,
      {
        user: publisherFor("wed-publisher", names),
        channels: names,
        urls: rig.system.urls.map((_, i) => i),
        mode: "closed",
        inflight: 8,
      },
      options.quick ? 2_000 : 10_000,
    );
    return { metrics: deliveryMetrics(run), notes: run.notes };
  },
};
