import { afterAll, beforeAll } from "vitest";
import { type DatabaseHandle, openDatabase } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { createFreshDatabase, type FreshPostgres } from "./fresh-postgres.ts";
import { RowLocks } from "./row-locks.ts";

export interface TwoInstances {
  a: DrizzleChannelStores;
  b: DrizzleChannelStores;
  locks: RowLocks;
}

/**
 * Two server instances' stores, on separate pools of one fresh Postgres database, and RowLocks on it:
 * call inside a describe; the fields are set before its tests run.
 */
export function twoInstances(adminUrl: string, databaseName: string): TwoInstances {
  const instances = {} as TwoInstances;
  let fresh: FreshPostgres | undefined;
  let handles: DatabaseHandle[] = [];
  beforeAll(async () => {
    fresh = await createFreshDatabase(adminUrl, databaseName);
    handles = [await openDatabase({ url: fresh.url }), await openDatabase({ url: fresh.url })];
    instances.a = new DrizzleChannelStores(handles[0]!.db);
    instances.b = new DrizzleChannelStores(handles[1]!.db);
    instances.locks = new RowLocks(fresh.url);
  });
  afterAll(async () => {
    await instances.locks?.end();
    for (const handle of handles) await handle.close();
    await fresh?.drop();
  });
  return instances;
}
