/**
 * 5. Idle memory: server RSS growth per connection with 10,000 idle subscribed connections, each RSS
 * read after a forced full GC (through the inspector) so that garbage timing does not decide it.
 */
import { sleep } from "../clock.ts";
import { collectGarbage } from "../inspector.ts";
import { dashboardChannel, memberOf } from "../naming.ts";
import { readRssBytes } from "../processes.ts";
import type { Rig } from "../rig.ts";
import { oneInstanceOnly, type Scenario, sized } from "./types.ts";

const PER_CHANNEL = 100;
const SETTLE_MS = 3_000;
const QUICK_SETTLE_MS = 1_000;

/** RSS of the (single) server after a pause (raw), and then after a forced full GC. */
async function settledRss(rig: Rig, quick: boolean): Promise<{ raw: number; gc: number }> {
  const pid = rig.system.pids[0]!;
  await sleep(quick ? QUICK_SETTLE_MS : SETTLE_MS);
  const raw = readRssBytes(pid);
  await collectGarbage(pid, rig.system.inspectorPorts[0]!);
  await sleep(500);
  return { raw, gc: readRssBytes(pid) };
}

export const idleMemory: Scenario = {
  name: "idle-memory",
  title: "Idle memory: server RSS per subscribed idle connection",
  metrics: (options) => [
    {
      key: "per-connection",
      label: `KiB/conn @${sized(options, 10_000)} after GC`,
      unit: "KiB",
      better: "lower",
      table: true,
      ratio: true,
    },
    { key: "per-connection-raw", label: "KiB/conn no GC", unit: "KiB", better: "lower", table: true },
    { key: "rss-before", label: "RSS before MiB", unit: "MiB", better: "lower", table: true },
    { key: "rss-after", label: "RSS after MiB", unit: "MiB", better: "lower", table: true },
    { key: "failures", label: "failed", unit: "count", better: "lower", table: true },
  ],
  skip: oneInstanceOnly,
  async run(rig, options) {
    const n = sized(options, 10_000);
    const channels = Array.from({ length: Math.ceil(n / PER_CHANNEL) }, (_, i) => dashboardChannel(i));
    await rig.system.prepareChannels(channels);
    const conns = Array.from({ length: n }, (_, i) => {
      const channel = channels[i % channels.length]!;
      return { user: memberOf(`idle-${i}`, channel), channel, url: rig.urlFor(i) };
    });
    // Warm the server's code paths first, so that growth is connections and not start-up.
    await rig.connect(conns.slice(0, 200), 100);
    await rig.closeConnections();
    const before = await settledRss(rig, options.quick);
    options.log(`${n} idle connections`);
    const result = await rig.connect(conns, 100);
    await rig.waitLive(n - result.failures);
    const after = await settledRss(rig, options.quick);
    const connected = n - result.failures;
    await rig.closeConnections();
    return {
      metrics: {
        "per-connection": connected ? (after.gc - before.gc) / connected / 1024 : null,
        "per-connection-raw": connected ? (after.raw - before.raw) / connected / 1024 : null,
        "rss-before": before.gc / 2 ** 20,
        "rss-after": after.gc / 2 ** 20,
        failures: result.failures,
      },
      notes: result.failures ? [`${result.failures} connections failed: ${result.firstError}`] : [],
    };
  },
};
