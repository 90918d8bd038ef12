import { ConfigError } from "@wedsync/channels";
import pino from "pino";
import { startInstance } from "./instance.ts";
import { loadServerConfig } from "./server-config.ts";

const SHUTDOWN_DEADLINE_MS = 10_000;

async function main() {
  const config = loadServerConfig();
  const logger = pino({ level: config.LOG_LEVEL });
  const instance = await startInstance({ config, logger });
  logger.info(
    { instanceId: instance.services.instanceId, ...instance.mode },
    `WedSync Channels listening on ${instance.url} (tRPC HTTP + WebSocket at /trpc, /healthz, /readyz, /metrics)`,
  );
  console.log(
    `\n  WedSync Channels ${instance.url}\n  database: ${instance.mode.database}\n  fan-out:  ${instance.mode.bus}\n  auth:     ${instance.mode.auth}\n  mint a token: pnpm run token -- --sub u1 --role supplier --supplier s1\n`,
  );

  const shutdown = (signal: string) => {
    logger.info({ signal }, "shutting down");
    const deadline = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    instance.close().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
