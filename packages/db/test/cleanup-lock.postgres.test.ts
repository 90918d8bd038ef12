import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelStore } from "../src/channel-store.ts";
import { type DatabaseHandle, openDatabase } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { appendInput, coupleDashboard } from "./fixtures.ts";
import { createFreshDatabase, type FreshPostgres, postgresUrlForTests } from "./fresh-postgres.ts";

const adminUrl = postgresUrlForTests("cleanup lock: postgres");

describe.runIf(adminUrl)("cleanup across instances (postgres)", () => {
  let fresh: FreshPostgres;
  let handle: DatabaseHandle;
  let store: ChannelStore;
  let otherInstance: postgres.Sql;

  beforeAll(async () => {
    fresh = await createFreshDatabase(adminUrl!);
    handle = await openDatabase({ url: fresh.url });
    store = new DrizzleChannelStores(handle.db).as(SERVICE_ACTOR);
    otherInstance = postgres(fresh.url, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await otherInstance?.end();
    await handle?.close();
    await fresh?.drop();
  });

  it("skips while another instance holds the cleanup lock, then deletes once it is free", async () => {
    const channel = await coupleDashboard(store);
    const past = new Date(Date.now() - 1_000);
    for (let i = 0; i < 3; i++) {
      await store.appendMessage(appendInput(channel.id, { payload: { text: `${i}` }, expiresAt: past }));
    }
    const reserved = await otherInstance.reserve();
    await reserved`select pg_advisory_lock(hashtext('wedsync:cleanup:messages'))`;
    expect(await store.deleteExpiredMessages(new Date())).toBeNull();
    await reserved`select pg_advisory_unlock(hashtext('wedsync:cleanup:messages'))`;
    reserved.release();
    expect(await store.deleteExpiredMessages(new Date())).toBe(3);
  });
});
