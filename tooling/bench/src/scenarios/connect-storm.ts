/** 1. Connect storm: N clients connect and subscribe, 100 at a time; connect + first subscription p50/p99. */
import { epochNowMs } from "../clock.ts";
import { dashboardChannel, memberOf } from "../naming.ts";
import { summarize } from "../stats.ts";
import { oneInstanceOnly, type Scenario, type ScenarioOptions, sized } from "./types.ts";

const CONCURRENCY = 100;
const CHANNELS = 10;

const sizes = (options: ScenarioOptions) => [sized(options, 1_000), sized(options, 5_000)];

export const connectStorm: Scenario = {
  name: "connect-storm",
  title: "Connect storm: connect + first subscription, concurrency 100",
  metrics: (options) =>
    sizes(options).flatMap((n, i) => {
      const k = i === 0 ? "small" : "large";
      return [
        { key: `${k}.p50`, label: `${n} p50`, unit: "ms", better: "lower", table: true },
        { key: `${k}.p99`, label: `${n} p99`, unit: "ms", better: "lower", table: true, ratio: i === 0 },
        { key: `${k}.max`, label: `${n} max`, unit: "ms", better: "lower" },
        { key: `${k}.wall`, label: `${n} all done`, unit: "ms", better: "lower" },
        { key: `${k}.live`, label: `${n} all live`, unit: "ms", better: "lower" },
        { key: `${k}.failures`, label: `${n} failed`, unit: "count", better: "lower", table: true },
      ] as const;
    }),
  skip: oneInstanceOnly,
  async run(rig, options) {
    const metrics: Record<string, number | null> = {};
    const notes: string[] = [];
    await rig.system.prepareChannels(Array.from({ length: CHANNELS }, (_, i) => dashboardChannel(i)));
    // Warm both sides' code paths (a cold client would measure its own JIT).
    await rig.connect(
      Array.from({ length: 50 }, (_, c) => {
        const channel = dashboardChannel(c % CHANNELS);
        return { user: memberOf(`warm-${c}`, channel), channel, url: rig.urlFor(c) };
      }),
      CONCURRENCY,
    );
    await rig.closeConnections();
    for (const [i, n] of sizes(options).entries()) {
      const k = i === 0 ? "small" : "large";
      const conns = Array.from({ length: n }, (_, c) => {
        const channel = dashboardChannel(c % CHANNELS);
        return { user: memberOf(`storm${i}-${c}`, channel), channel, url: rig.urlFor(c) };
      });
      options.log(`${n} connections, concurrency ${CONCURRENCY}`);
      const started = epochNowMs();
      const result = await rig.connect(conns, CONCURRENCY);
      const wall = epochNowMs() - started;
      const live = await rig.waitLive(n - result.failures);
      const summary = summarize(result.times);
      Object.assign(metrics, {
        [`${k}.p50`]: summary.p50,
        [`${k}.p99`]: summary.p99,
        [`${k}.max`]: summary.max,
        [`${k}.wall`]: wall,
        [`${k}.live`]: live ? epochNowMs() - started : null,
        [`${k}.failures`]: result.failures,
      });
      if (result.failures) notes.push(`${n}: ${result.failures} failed: ${result.firstError}`);
      await rig.closeConnections();
    }
    return { metrics, notes };
  },
};
