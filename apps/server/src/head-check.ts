import type { ChannelServices } from "@wedsync/channels";
import type { Logger } from "pino";

/**
 * Periodically reconciles live fan-out with the store (LocalFanout.reconcile), so a message that
 * an instance stored but never published (it lost Redis, then died) still reaches subscribers
 * elsewhere within one interval, without waiting for the next message. Returns a stop function.
 */
export function scheduleHeadCheck(services: ChannelServices, logger: Logger): () => void {
  const heads = (ids: string[]) => services.serviceStore.channelHeads(ids);
  const timer = setInterval(() => {
    services.fanout.reconcile(heads).catch((error) => logger.warn({ err: error }, "head check failed"));
  }, services.config.CHANNELS_HEAD_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
