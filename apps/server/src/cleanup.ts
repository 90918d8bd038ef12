import type { ChannelServices } from "@wedsync/channels";
import type { DatabaseHandle } from "@wedsync/db";
import type { Logger } from "pino";

/**
 * Deletes expired messages and idle channels on an interval, then has the database vacuum and analyze
 * what it does not by itself (`vacuum`: the embedded database has no autovacuum, so without it the space
 * of deleted messages and of the channels' updated heads is never reused, and its planner has no
 * statistics); returns a stop function. Every
 * instance schedules it; a database lock lets only one of them do the deleting at a time.
 */
export function scheduleCleanup(
  services: ChannelServices,
  vacuum: DatabaseHandle["vacuum"],
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
      const maintained = await timedVacuum(services, vacuum);
      if (maintained.vacuumed.length + maintained.analyzed.length > 0)
        logger.info(maintained, "vacuumed and analyzed the embedded database");
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

async function timedVacuum(services: ChannelServices, vacuum: DatabaseHandle["vacuum"]) {
  const started = performance.now();
  const { vacuumed, analyzed } = await vacuum();
  const ms = performance.now() - started;
  if (vacuumed.length + analyzed.length > 0) {
    services.metrics.vacuumTime.observe(ms / 1000);
    for (const table of vacuumed) services.metrics.vacuums.inc({ table });
    for (const table of analyzed) services.metrics.analyzes.inc({ table });
  }
  return { vacuumed, analyzed, ms: Math.round(ms) };
}
