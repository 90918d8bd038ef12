import { openDatabase } from "../src/client.ts";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";
import { channelStoreContract } from "./channel-store.contract.ts";

channelStoreContract("pglite (memory)", async () => {
  const handle = await openDatabase({ memory: true });
  return { store: new DrizzleChannelStores(handle.db).as(SERVICE_ACTOR), close: () => handle.close() };
});
