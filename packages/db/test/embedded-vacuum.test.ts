import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type DatabaseHandle, openDatabase } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { type AppendMessage, type ChannelStore, SERVICE_ACTOR, type StoreActor } from "../src/index.ts";
import type { ChannelRow } from "../src/schema.ts";
import { actorStatement } from "../src/store-actor.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";

/**
 * The embedded database has no autovacuum (PGlite is single-user Postgres): `vacuum` is what gives
 * retention's deletions and the channel heads' updates their space back, and its planner statistics.
 */
describe("vacuum and analyze on the embedded database", () => {
  let handle: DatabaseHandle;
  let service: ChannelStore;
  let couple: ChannelStore;
  let coupleActor: StoreActor;
  let channel: ChannelRow;

  beforeEach(async () => {
    handle = await openDatabase({ memory: true });
    const stores = new DrizzleChannelStores(handle.db);
    service = stores.as(SERVICE_ACTOR);
    const coupleId = `c-${randomUUID().slice(0, 8)}`;
    channel = await coupleDashboard(service, { coupleId });
    coupleActor = { kind: "user", sub: "c", role: "couple", suppliers: [], couples: [coupleId], venues: [] };
    couple = stores.as(coupleActor);
  });
  afterEach(async () => {
    await handle.close();
  });

  /** An append by the couple, who may publish on their dashboard. */
  const append = (overrides: Partial<AppendMessage> = {}) =>
    couple.appendMessage(appendInput(channel.id, { senderId: "c", ...overrides }));

  /** `count` appends that retention may delete at once. */
  async function appendExpired(count: number) {
    const expiresAt = new Date(Date.now() - 1_000);
    for (let i = 0; i < count; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => append({ payload: { n: i + j }, expiresAt })));
  }

  const bytes = async (table: string) => {
    const result = await handle.db.execute(sql`select pg_relation_size(${table}::regclass)::float8 as bytes`);
    return (result as unknown as { rows: Array<{ bytes: number }> }).rows[0]!.bytes;
  };

  it("gives the space of expired messages back, so the next ones reuse it instead of growing the file", async () => {
    const sizes: number[] = [];
    for (let round = 0; round < 3; round++) {
      await appendExpired(2_000);
      sizes.push(await bytes("channel_message_queue"));
      expect(await service.deleteExpiredMessages(new Date())).toBe(2_000);
      expect((await handle.vacuum()).vacuumed).toContain("channel_message_queue");
    }
    // Without a vacuum the third round's rows land after the first two rounds' dead ones: three times the size.
    expect(sizes[2]).toBeLessThan(sizes[0]! * 1.5);
  });

  it("leaves tables below autovacuum's thresholds alone", async () => {
    await append();
    expect(await handle.vacuum()).toEqual({ vacuumed: [], analyzed: [] });
  });

  it("vacuums the channel table for its head updates alone, before retention deleted anything", async () => {
    // Every append on its own moves its channel's head: one dead version of the channel row each, well past
    // autovacuum's 50 + 20% of one row.
    for (let i = 0; i < 200; i++) await append({ payload: { n: i } });
    expect((await handle.vacuum()).vacuumed).toEqual(["websocket_channels"]);
    expect((await handle.vacuum()).vacuumed).toEqual([]);
  });

  /** How the planner reads a channel's oldest retained message for the couple (retainedRange). */
  const oldestRetainedPlan = () =>
    handle.db.transaction(async (tx) => {
      await tx.execute(actorStatement(coupleActor));
      const result = await tx.execute(
        sql`explain select min(seq) from channel_message_queue
            where channel_id = ${channel.id} and expires_at > ${new Date().toISOString()}::timestamptz`,
      );
      return (result as unknown as { rows: Array<{ "QUERY PLAN": string }> }).rows
        .map((row) => row["QUERY PLAN"])
        .join("\n");
    });

  it("analyzes the tables whose rows changed enough, so a channel's oldest message is read through its key", async () => {
    for (let i = 0; i < 300; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => append({ payload: { n: i + j } })));
    // No statistics: the planner scans every message of the channel, a policy check on each.
    expect(await oldestRetainedPlan()).not.toContain("channel_message_queue_channel_id_seq_pk");

    // autovacuum's analyze rule: 50 + 10% of the table's rows changed since its last analyze.
    expect((await handle.vacuum()).analyzed).toContain("channel_message_queue");
    expect(await oldestRetainedPlan()).toContain("Index Scan using channel_message_queue_channel_id_seq_pk");
    expect((await handle.vacuum()).analyzed).toEqual([]);
  });
});
