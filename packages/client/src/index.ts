export {
  type ChannelsClient,
  type ChannelsClientOptions,
  createChannelsClient,
  errorCode,
  jitteredBackoff,
  type TokenSource,
} from "./channels-client.ts";
export { type FollowHandlers, type Following, type FollowOptions, followChannel } from "./follow.ts";
