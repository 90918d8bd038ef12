import { MemoryBus, type PresenceEntry } from "@wedsync/bus";
import { describe, expect, it } from "vitest";
import { PresenceManager, REFRESH_BATCH } from "../src/presence-manager.ts";

type Batch = ReadonlyArray<{ channelId: string; entry: PresenceEntry }>;

/** A memory bus whose refresh writes are recorded, the first one held until `release` is called. */
function heldBus() {
  const bus = new MemoryBus();
  const batches: Batch[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const upsert = bus.presence.upsert.bind(bus.presence);
  bus.presence.upsert = async (entries, ttlMs) => {
    batches.push(entries);
    if (batches.length === 1) await held;
    return upsert(entries, ttlMs);
  };
  return { bus, batches, release };
}

describe("presence refresh", () => {
  it("writes the instance's entries a batch at a time, leaving out one that left meanwhile", async () => {
    const { bus, batches, release } = heldBus();
    // A refresh every second: the first has long finished when the second starts.
    const ttlMs = 3_000;
    const presence = new PresenceManager(bus, "i1", ttlMs, (error) => {
      throw error;
    });
    const joined: PresenceEntry[] = [];
    for (let i = 0; i < 2 * REFRESH_BATCH + 10; i++)
      joined.push(await presence.join("ch", "collaboration:s:c", `u${i}`));
    presence.start();
    try {
      await expect.poll(() => batches.length, { timeout: 5_000 }).toBe(1);
      // The refresh waits on its first batch; the last connection leaves before its batch is written.
      const last = joined.at(-1)!;
      await presence.leave("ch", last);
      release();
      await expect.poll(() => batches.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
    } finally {
      presence.stop();
    }
    const firstRefresh = batches.slice(0, 3);
    expect(firstRefresh.map((batch) => batch.length)).toEqual([REFRESH_BATCH, REFRESH_BATCH, 9]);
    const written = firstRefresh.flat().map(({ entry }) => entry.clientId);
    expect(written).not.toContain(joined.at(-1)!.clientId);
    expect(new Set(written).size).toBe(joined.length - 1);
    expect((await bus.presence.list("ch")).length).toBe(joined.length - 1);
  });
});
