export {
  type ChannelsClient,
  type ChannelsClientOptions,
  createChannelsClient,
  errorCode,
  jitteredBackoff,
  type TokenSource,
} from "./channels-client.ts";
