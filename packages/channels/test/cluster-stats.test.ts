import { MemoryBus } from "@wedsync/bus";
import type { ChannelStore, StoreCounts } from "@wedsync/db";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LocalFanout } from "../src/fanout.ts";
import { createMetrics } from "../src/metrics.ts";
import { ClusterStats, STORE_COUNTS_MS } from "../src/stats.ts";

/** Stats over a store whose counts answer `answers` in turn, counting how often it was asked. */
function statsOver(answers: Array<() => Promise<StoreCounts>>) {
  let reads = 0;
  const store = {
    counts: () => answers[Math.min(reads++, answers.length - 1)]!(),
  } as unknown as ChannelStore;
  const bus = new MemoryBus();
  const stats = new ClusterStats(
    {
      bus,
      store,
      fanout: new LocalFanout(bus),
      metrics: createMetrics({ liveChannels: () => 0, queuedMessages: async () => 0 }),
      instanceId: "i-test",
    },
    2_000,
    () => {},
  );
  return { stats, reads: () => reads };
}

const counted = (channels: number) => async () => ({ channels, activeSubscriptions: 0, queuedMessages: 0 });

afterEach(() => {
  vi.useRealTimers();
});

describe("ClusterStats snapshots", () => {
  it("share one reading of the store's counts for STORE_COUNTS_MS, however many ask", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const { stats, reads } = statsOver([counted(1), counted(2)]);

    const together = await Promise.all([stats.snapshot(), stats.snapshot(), stats.snapshot()]);
    expect(together.map((snapshot) => snapshot.channels)).toEqual([1, 1, 1]);
    vi.advanceTimersByTime(STORE_COUNTS_MS - 1);
    expect((await stats.snapshot()).channels).toBe(1);
    expect(reads()).toBe(1);

    vi.advanceTimersByTime(1);
    expect((await stats.snapshot()).channels).toBe(2);
    expect(reads()).toBe(2);
  });

  it("read the store again at once after a failed reading", async () => {
    const { stats, reads } = statsOver([async () => Promise.reject(new Error("database down")), counted(5)]);

    await expect(stats.snapshot()).rejects.toThrow("database down");
    expect((await stats.snapshot()).channels).toBe(5);
    expect(reads()).toBe(2);
  });
});
