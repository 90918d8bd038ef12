import type { ChannelServices } from "@wedsync/channels";
import type { Logger } from "pino";

/**
 * Deletes expired messages and idle channels on an interval; returns a stop function. Every
 * instance schedules it; a database lock lets only one of them do the work at a time.
 */
export function scheduleCleanup(services: ChannelServices, logger: Logger): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const expiredMessages = await services.queue.cleanupExpiredMessages(services.serviceStore);
      const inactiveChannels = await services.manager.cleanupInactiveChannels();
      if (expiredMessages === null && inactiveChannels === null)
        logger.debug("cleanup skipped: another instance is on it");
      else logger.info({ expiredMessages, inactiveChannels }, "cleanup done");
    } catch (error) {
      logger.warn({ err: error }, "cleanup failed; will retry next interval");
    } finally {
      running = false;
    }
  };
  const timer = setInterval(run, services.config.CHANNELS_CLEANUP_INTERVAL);
  timer.unref();
  return () => clearInterval(timer);
}
