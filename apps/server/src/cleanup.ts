import type { ChannelServices } from "@wedsync/channels";
import type { Logger } from "pino";

/**
 * Deletes expired messages and idle channels on an interval, then has the database vacuum what it does
 * not vacuum by itself (`vacuum`: the embedded database has no autovacuum, so without it the space of
 * deleted messages and of the channels' updated heads is never reused); returns a stop function. Every
 * instance schedules it; a database lock lets only one of them do the deleting at a time.
 */
export function scheduleCleanup(
  services: ChannelServices,
  vacuum: () => Promise<string[]>,
  logger: Logger,
): () => void {
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
      const vacuumed = await timedVacuum(services, vacuum);
      if (vacuumed.tables.length > 0) logger.info(vacuumed, "vacuumed the embedded database");
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

async function timedVacuum(services: ChannelServices, vacuum: () => Promise<string[]>) {
  const started = performance.now();
  const tables = await vacuum();
  const ms = performance.now() - started;
  if (tables.length > 0) {
    services.metrics.vacuumTime.observe(ms / 1000);
    for (const table of tables) services.metrics.vacuums.inc({ table });
  }
  return { tables, ms: Math.round(ms) };
}
