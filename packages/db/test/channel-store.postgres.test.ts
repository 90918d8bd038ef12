import { describe, it } from "vitest";
import { openDatabase } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { channelStoreContract } from "./channel-store.contract.ts";
import { createFreshDatabase, postgresUrlForTests } from "./fresh-postgres.ts";

const SUITE = "ChannelStore contract: postgres";
// Throws under CI when DATABASE_URL is missing, so the file fails instead of passing vacuously.
const adminUrl = postgresUrlForTests(SUITE);

if (adminUrl) {
  channelStoreContract("postgres", async () => {
    const fresh = await createFreshDatabase(adminUrl);
    try {
      const handle = await openDatabase({ url: fresh.url });
      return {
        store: new DrizzleChannelStores(handle.db).as(SERVICE_ACTOR),
        close: async () => {
          try {
            await handle.close();
          } finally {
            await fresh.drop();
          }
        },
      };
    } catch (error) {
      await fresh.drop();
      throw error;
    }
  });
} else {
  describe.skip(SUITE, () => {
    it("needs DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)", () => {});
  });
}
