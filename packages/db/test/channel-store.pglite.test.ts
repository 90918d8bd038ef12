import { openDatabase } from "../src/client.ts";
import { DrizzleChannelStore } from "../src/drizzle-channel-store.ts";
import { channelStoreContract } from "./channel-store.contract.ts";

channelStoreContract("pglite (memory)", async () => {
  const handle = await openDatabase({ memory: true });
  return { store: new DrizzleChannelStore(handle.db), close: () => handle.close() };
});
