import { randomUUID } from "node:crypto";
import type { AppendMessage, ChannelStore } from "../src/channel-store.ts";
import type { ChannelRow } from "../src/schema.ts";

/** A new `couple:dashboard:{coupleId}` channel, created through `store` (the service sees every channel). */
export async function coupleDashboard(
  store: ChannelStore,
  { coupleId = `c-${randomUUID().slice(0, 8)}`, createdBy = "planner" } = {},
): Promise<ChannelRow> {
  const { channel } = await store.upsertChannel({
    name: `couple:dashboard:${coupleId}`,
    type: "private",
    scope: "couple",
    entity: "dashboard",
    entityId: coupleId,
    createdBy,
    metadata: {},
  });
  if (!channel) throw new Error(`couple:dashboard:${coupleId} is not visible to the actor that created it`);
  return channel;
}

/** An append to `channelId` that expires in an hour unless told otherwise. */
export function appendInput(channelId: string, overrides: Partial<AppendMessage> = {}): AppendMessage {
  return {
    channelId,
    event: "message.posted",
    payload: { text: "hi" },
    senderId: "s",
    idempotencyKey: null,
    expiresAt: new Date(Date.now() + 3_600_000),
    ...overrides,
  };
}
