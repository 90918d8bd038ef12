import { describe, expect, it } from "vitest";
import type { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";
import { postgresUrlForTests } from "./fresh-postgres.ts";
import { twoInstances } from "./two-instances.ts";

const adminUrl = postgresUrlForTests("group commit lock order: postgres");

/**
 * A group commit locks every channel row it appends to until it commits. Two instances whose batches share
 * channels must take those locks in the same order, or each can hold one row the other waits for: Postgres
 * then aborts one of them as a deadlock (after deadlock_timeout, a second by default).
 */
describe.runIf(adminUrl)("group commit across instances (postgres)", () => {
  const instances = twoInstances(adminUrl!, "channels_group_commit_order");

  it("batches that share channels, made in opposite orders, neither deadlock nor fall back", async () => {
    const { a, b, locks } = instances;
    const service = a.as(SERVICE_ACTOR);
    const [first, second] = [(await coupleDashboard(service)).id, (await coupleDashboard(service)).id].sort();
    const batch = (stores: DrizzleChannelStores, channelIds: string[]) =>
      Promise.all(channelIds.map((id) => stores.as(SERVICE_ACTOR).appendMessage(appendInput(id))));
    const fallbacks = () => a.appendStats.fallbacks + b.appendStats.fallbacks;
    const before = fallbacks();

    // Both queue behind a held lock on the first channel; b names the channels the other way round.
    const release = await locks.holdChannelRow(first!);
    const fromA = batch(a, [first!, second!]);
    await locks.waiters(1);
    const fromB = batch(b, [second!, first!]);
    await locks.waiters(2);
    await release();

    const seqs = (await Promise.all([fromA, fromB]))
      .flat()
      .map((r) => `${r.message.channelId}:${r.message.seq}`);
    expect(seqs.sort()).toEqual([`${first}:1`, `${first}:2`, `${second}:1`, `${second}:2`]);
    expect(fallbacks()).toBe(before);
  });
});
