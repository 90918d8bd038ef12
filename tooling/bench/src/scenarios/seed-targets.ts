/**
 * 6. The seed's own targets under the load of scenario 2 (1,000 subscribers of one supplier, a
 * broadcast every 50 ms = 1,200 messages/minute on the channel): p99 of channel creation (< 200 ms),
 * broadcast acknowledgement (< 100 ms), connection establishment (< 300 ms) and queueing, i.e. the
 * channel.subscribe mutation (< 50 ms).
 */
import { dashboardChannel, memberOf, publisherFor, supplierOf } from "../naming.ts";
import { summarize } from "../stats.ts";
import type { SeedProbeResult } from "../worker-protocol.ts";
import { deliveryMetrics, measureDelivery } from "./measure.ts";
import { type MetricSpec, type Scenario, sized } from "./types.ts";

export const SEED_TARGETS = { create: 200, ack: 100, connect: 300, subscribe: 50 } as const;
const MIN_CONNECTIONS_PER_SUPPLIER = 200;
const MIN_MESSAGES_PER_MINUTE = 1_000;
const INTERVAL_MS = 50;
/**
 * One round of probes (create, subscribe, connect) this often: 200 rounds in the 10 s, so each p99 is
 * the third slowest of its kind rather than the slowest of 40 (every 250 ms, as before 2026-12-03).
 * Still probing, not loading: a round is two connections and two calls, 20 a second beside 20,000
 * deliveries a second.
 */
const PROBE_EVERY_MS = 50;
const PROBE_WARM_UP_MS = 2_000;

const target = (key: string, label: string): MetricSpec[] => [
  { key: `${key}.p99`, label: `${label} p99`, unit: "ms", better: "lower", table: true },
  { key: `${key}.pass`, label: "ok", unit: "pass", better: "higher", table: true },
];

export const seedTargets: Scenario = {
  name: "seed-targets",
  title: "Seed targets (p99) under 20k deliveries/s",
  metrics: () => [
    ...target("create", "create<200"),
    ...target("ack", "ack<100"),
    ...target("connect", "connect<300"),
    ...target("subscribe", "queue<50"),
    { key: "per-supplier", label: "conns/supplier", unit: "count", better: "higher", table: true },
    { key: "per-minute", label: "msgs/min/ch", unit: "count", better: "higher", table: true },
    { key: "scale.pass", label: "ok", unit: "pass", better: "higher", table: true },
    { key: "p99", label: "delivery p99", unit: "ms", better: "lower" },
    { key: "ratio", label: "delivered", unit: "fraction", better: "higher" },
    { key: "probe-rounds", label: "probe rounds", unit: "count", better: "higher" },
    { key: "probe-errors", label: "probe errors", unit: "count", better: "lower" },
    { key: "server-cpu", label: "server CPU", unit: "percent", better: "lower" },
    { key: "client-cpu", label: "load generator CPU", unit: "percent", better: "lower" },
  ],
  skip: (system) => (system.isWedSync ? null : "the seed's targets are WedSync's own"),
  async run(rig, options) {
    const channel = dashboardChannel(3);
    await rig.system.prepareChannels([channel]);
    const n = Math.max(MIN_CONNECTIONS_PER_SUPPLIER, sized(options, 1_000));
    const durationMs = options.quick ? 3_000 : 10_000;
    options.log(
      `${n} subscribers of one supplier, a broadcast every ${INTERVAL_MS} ms, seed probes beside it`,
    );
    const conns = Array.from({ length: n }, (_, i) => ({
      user: memberOf(`seed-${i}`, channel),
      channel,
      url: rig.urlFor(i),
    }));
    const probePlan = {
      everyMs: PROBE_EVERY_MS,
      supplier: supplierOf(channel),
      channel,
      urls: rig.system.urls.map((_, i) => i),
    };
    // The probes' paths warm up too (first requests of their kind, JIT, prepared statements), as
    // the deliveries do before they are measured.
    await rig.seedProbes({ ...probePlan, prefix: "seed-warm", durationMs: PROBE_WARM_UP_MS });
    let probes: SeedProbeResult | undefined;
    const run = await measureDelivery(
      rig,
      options,
      conns,
      {
        user: publisherFor("seed-publisher", [channel]),
        channels: [channel],
        urls: rig.system.urls.map((_, i) => i),
        mode: "open",
        intervalMs: INTERVAL_MS,
      },
      durationMs,
      async () => {
        probes = await rig.seedProbes({ ...probePlan, prefix: "seed-probe", durationMs });
      },
    );
    const p99 = (samples: Float32Array | undefined) => (samples?.length ? summarize(samples).p99 : null);
    const pass = (value: number | null, limit: number) => (value !== null && value < limit ? 1 : 0);
    const create = p99(probes?.create);
    const ack = p99(run.publish.acks);
    const connect = p99(probes?.connect);
    const subscribe = p99(probes?.subscribe);
    const connected = n - run.connectFailures;
    const perMinute =
      (run.publish.published - run.publish.errors) / ((run.publish.endedAt - run.publish.startedAt) / 60_000);
    const delivery = deliveryMetrics(run);
    const notes = [...run.notes];
    if (probes?.errors) notes.push(`${probes.errors} seed probes failed: ${probes.firstError}`);
    return {
      metrics: {
        "create.p99": create,
        "create.pass": pass(create, SEED_TARGETS.create),
        "ack.p99": ack,
        "ack.pass": pass(ack, SEED_TARGETS.ack),
        "connect.p99": connect,
        "connect.pass": pass(connect, SEED_TARGETS.connect),
        "subscribe.p99": subscribe,
        "subscribe.pass": pass(subscribe, SEED_TARGETS.subscribe),
        "per-supplier": connected,
        "per-minute": perMinute,
        "scale.pass":
          connected >= MIN_CONNECTIONS_PER_SUPPLIER &&
          perMinute >= MIN_MESSAGES_PER_MINUTE &&
          (delivery.ratio ?? 0) > 0.999
            ? 1
            : 0,
        p99: delivery.p99 ?? null,
        ratio: delivery.ratio ?? null,
        "probe-rounds": probes?.create.length ?? null,
        "probe-errors": probes?.errors ?? null,
        "server-cpu": delivery["server-cpu"] ?? null,
        "client-cpu": delivery["client-cpu"] ?? null,
      },
      notes,
    };
  },
};
