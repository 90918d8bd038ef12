export type * from "./channel-store.ts";
export { ChannelUnavailableError, WebhookLimitError } from "./channel-store.ts";
export { type Database, type DatabaseHandle, type DatabaseOptions, openDatabase } from "./client.ts";
export { DrizzleChannelStores } from "./drizzle-channel-store.ts";
export type {
  AuditRow,
  ChannelRow,
  GrantRow,
  MessageRow,
  NewAuditRow,
  SubscriptionRow,
  WebhookOutboxRow,
  WebhookRow,
} from "./schema.ts";
export * as schema from "./schema.ts";
export { SERVICE_ACTOR, type StoreActor, settingsKey } from "./store-actor.ts";
