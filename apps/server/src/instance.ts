import { join } from "node:path";
import { type Bus, MemoryBus, RedisBus } from "@wedsync/bus";
import {
  type Config,
  createChannelServices,
  createTokenVerifier,
  type HostResolver,
} from "@wedsync/channels";
import { type DatabaseOptions, DrizzleChannelStores, openDatabase } from "@wedsync/db";
import pino, { type Logger } from "pino";
import { scheduleCleanup } from "./cleanup.ts";
import { withCoalescedReads } from "./coalesced-reads.ts";
import { scheduleHeadCheck } from "./head-check.ts";
import { resolveJwtSecret } from "./jwt-secret.ts";
import { type RunningServer, startServer } from "./server.ts";
import { scheduleWebhookDeliveries } from "./webhook-delivery.ts";

export interface InstanceOptions {
  config: Config;
  /** Overrides the choice made from DATABASE_URL (tests use an in-memory PGlite). */
  database?: DatabaseOptions;
  logger?: Logger;
  /** Overrides the system's name resolution for outbound webhook targets (tests). */
  resolveHost?: HostResolver;
}

export interface Instance extends RunningServer {
  services: ReturnType<typeof createChannelServices>;
  mode: { database: string; bus: string; auth: string };
}

/** Wires one server instance from configuration: database, bus, services, HTTP + WebSocket. */
export async function startInstance(options: InstanceOptions): Promise<Instance> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL });
  if (config.CHANNELS_WEBHOOK_ALLOW_PRIVATE) {
    logger.warn(
      "CHANNELS_WEBHOOK_ALLOW_PRIVATE is on: outbound webhooks may reach loopback and private addresses (development and tests only)",
    );
  }
  const databaseOptions: DatabaseOptions =
    options.database ??
    (config.DATABASE_URL
      ? { url: config.DATABASE_URL }
      : { dataDir: join(config.CHANNELS_DATA_DIR, "pglite") });
  const database = await openDatabase(databaseOptions);
  const bus = await openBus(config, logger);
  const secret = resolveJwtSecret(config);
  const verifyToken = createTokenVerifier({
    secret: secret?.secret,
    jwksUrl: config.CHANNELS_JWKS_URL,
    issuer: config.CHANNELS_JWT_ISSUER,
    audience: config.CHANNELS_JWT_AUDIENCE,
  });
  const services = createChannelServices({
    config,
    stores: withCoalescedReads(new DrizzleChannelStores(database.db)),
    bus,
    onBackgroundError: (error) => logger.error({ err: error }, "audit write failed"),
    resolveHost: options.resolveHost,
  });
  await services.fanout.start();
  services.presence.start();
  await services.stats.start();
  const server = await startServer({
    services,
    verifyToken,
    logger,
    health: { database: database.ping, bus: () => bus.ping() },
    port: config.PORT,
  });
  const stopCleanup = scheduleCleanup(services, database.vacuum, logger);
  const stopHeadCheck = scheduleHeadCheck(services, logger);
  const stopWebhooks = scheduleWebhookDeliveries(services, logger);
  return {
    ...server,
    services,
    mode: {
      database: `${database.kind} (${database.location})`,
      bus: bus.kind === "memory" ? "in-process" : `redis (${new URL(config.REDIS_URL ?? "").host})`,
      auth: config.CHANNELS_JWKS_URL
        ? `JWKS ${config.CHANNELS_JWKS_URL}`
        : `HS256 secret from ${secret?.source}`,
    },
    async close() {
      stopCleanup();
      stopHeadCheck();
      await stopWebhooks();
      services.presence.stop();
      services.stats.stop();
      await server.close();
      await bus.close();
      await database.close();
    },
  };
}

async function openBus(config: Config, logger: Logger): Promise<Bus> {
  if (!config.REDIS_URL) return new MemoryBus();
  const bus = new RedisBus({
    url: config.REDIS_URL,
    onError: (error) =>
      logger.warn({ err: error.message }, "redis connection problem; live fan-out degraded"),
  });
  await bus.connect();
  return bus;
}
