export { AuditTrail } from "./audit.ts";
export {
  createTokenVerifier,
  mintToken,
  TokenError,
  type TokenSettings,
  type TokenVerifier,
  type VerifiedIdentity,
  type VerifyOptions,
} from "./auth.ts";
export { setBounded } from "./bounded-map.ts";
export { ChannelManager } from "./channel-manager.ts";
export {
  type ChannelAddress,
  type ChannelType,
  channelNameSchema,
  type ParsedChannelName,
  parseChannelName,
} from "./channel-name.ts";
export { COMPACT_FRAMES, FRAMES_PARAM } from "./compact-frame.ts";
export { type Config, ConfigError, loadConfig } from "./config.ts";
export { type ChannelEvent, type EventName, eventNames, eventPayloads, eventSchema } from "./events.ts";
export { type Identity, identityClaimsSchema } from "./identity.ts";
export {
  type ChannelMessage,
  type ChannelReset,
  type ChannelStreamItem,
  messageId,
  parseMessageId,
} from "./message.ts";
export { MessageQueue } from "./message-queue.ts";
export { isAllowed } from "./policy.ts";
export { type OnlineUser, type PresenceEvent, PresenceManager } from "./presence-manager.ts";
export { type AppRouter, appRouter } from "./router/app-router.ts";
export { type DirectSubscription, directSubscriptions } from "./router/direct-subscriptions.ts";
export { type Context, createCallerFactory } from "./router/trpc.ts";
export { toPlainText } from "./sanitize.ts";
export { type ChannelServices, createChannelServices } from "./services.ts";
export { type OutboundSocket, SLOW_CONSUMER_CLOSE_CODE } from "./slow-consumer.ts";
export { type ClusterSnapshot, ClusterStats, type InstanceFigures } from "./stats.ts";
export type { StopListener, StopSignal } from "./stop-signal.ts";
export {
  acceptInboundWebhook,
  INBOUND_WEBHOOK_SENDER,
  type InboundWebhookRequest,
  type InboundWebhookResponse,
  inboundWebhookMaxBytes,
  refuseOversizedWebhook,
} from "./webhook-inbound.ts";
export {
  computeSignature,
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_SECONDS,
  type SignatureCheck,
  signWebhook,
  verifyWebhookSignature,
  type WebhookKey,
} from "./webhook-signature.ts";
export { type HostResolver, type ResolvedAddress, systemResolver } from "./webhook-url.ts";
export {
  generateWebhookSecret,
  webhookDeliveryBody,
  webhookRetryDelay,
  webhookUrlSchema,
} from "./webhooks.ts";
export { channelsTransformer, channelsWsEncoder, decodeMessage, encodeMessage } from "./wire-format.ts";
