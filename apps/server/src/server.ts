import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { TRPCError } from "@trpc/server";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import {
  type AppRouter,
  appRouter,
  type ChannelServices,
  type Context,
  channelsWsEncoder,
  directSubscriptions,
  type TokenVerifier,
} from "@wedsync/channels";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { ConnectionHealthMonitor, TOKEN_EXPIRED_CLOSE_CODE } from "./connection-health.ts";
import { type HealthProbes, handleOpsRequest, registerDependencyGauge } from "./ops-routes.ts";
import { stockTrpcWs } from "./stock-trpc-ws.ts";
import { createJsonPostHandler, isPlainJsonPost } from "./trpc-http.ts";
import { TrpcWsHandler, type WsContextOptions } from "./trpc-ws-connection.ts";
import { handleInboundWebhook, INBOUND_WEBHOOK_PATH } from "./webhook-routes.ts";

export interface ServerOptions {
  services: ChannelServices;
  verifyToken: TokenVerifier;
  logger: Logger;
  /** Probes for /readyz: each rejects when its dependency is unhealthy. */
  health: HealthProbes;
  port: number;
  host?: string;
  /** How long a shutdown waits for accepted mutations to finish. */
  drainTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  /** Tells clients to reconnect elsewhere, stops accepting and closes every socket. */
  close(): Promise<void>;
}

const TRPC_PATH = "/trpc";

const TRPC_QUERY = `${TRPC_PATH}?`;

/** A WebSocket's token is verified once per connection: not worth a place among the remembered ones. */
const ONCE_PER_CONNECTION = { remember: false };

/** The upgrade is for the tRPC endpoint, whatever its query (checked without allocating: per connect). */
const isTrpcPath = (url: string | undefined) =>
  url !== undefined && (url === TRPC_PATH || url.startsWith(TRPC_QUERY));

function refuseUpgrade(socket: Duplex, status: string, headers = "") {
  socket.end(`HTTP/1.1 ${status}\r\n${headers}Connection: close\r\n\r\n`);
}

/** A limiter that cannot answer (its Redis is down) does not keep anyone out. */
const allowWithoutLimiter = () => ({ allowed: true }) as const;

export { TOKEN_EXPIRED_CLOSE_CODE };

/** Verification allows the same clock skew, so a just-expired token is not closed in a loop. */
const CLOCK_SKEW_MS = 5_000;

/**
 * Behind our proxy, the address it saw is the LAST X-Forwarded-For entry: earlier entries come
 * from the client and can be forged.
 */
function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  const header = trustProxy ? req.headers["x-forwarded-for"] : undefined;
  const entries = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",");
  const last = entries[entries.length - 1]?.trim();
  return last || req.socket.remoteAddress || "unknown";
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { services, logger } = options;
  const { config, metrics } = services;

  async function contextFor(token: string | undefined, ws?: WsContextOptions): Promise<Context> {
    const socket = ws?.outbound;
    if (!token) return { identity: null, services, socket };
    try {
      const { expiresAt, ...identity } = await options.verifyToken(
        token,
        ws ? ONCE_PER_CONNECTION : undefined,
      );
      // A socket's identity is fixed at connect: when its token expires, the client must reconnect
      // with a fresh one.
      if (ws) health.closeAt(ws.socket, expiresAt.getTime() + CLOCK_SKEW_MS);
      return { identity, services, socket };
    } catch (error) {
      metrics.authFailures.inc();
      services.audit.record({
        actorId: null,
        action: "authenticate",
        outcome: "denied",
        reason: (error as Error).message,
      });
      return { identity: null, authError: (error as Error).message, services, socket };
    }
  }

  // JSON escaping and superjson framing can grow a payload; anything beyond this is hostile.
  const maxFrameBytes = config.CHANNELS_MAX_PAYLOAD_BYTES * 4 + 16_384;

  /** Server faults are logged with their stack; client errors only at debug. Never inputs or tokens. */
  const onError = ({ error, path, type }: { error: TRPCError; path?: string; type: string }) => {
    const fields = { path, type, code: error.code, message: error.message };
    if (error.code === "INTERNAL_SERVER_ERROR")
      logger.error({ ...fields, err: error.cause ?? error }, "procedure failed");
    else logger.debug(fields, "procedure refused");
  };

  // `stock` keeps tRPC's own adapters throughout: the reference the fast paths are measured against.
  const ownAdapters = config.CHANNELS_FANOUT_MODE === "encode-once";
  const trpcOptions = {
    router: appRouter,
    basePath: `${TRPC_PATH}/`,
    maxBodySize: maxFrameBytes,
    createContext: (req: IncomingMessage) => contextFor(bearer(req)),
    onError,
  };
  const trpcHandler = createHTTPHandler<AppRouter>({
    ...trpcOptions,
    createContext: ({ req }) => trpcOptions.createContext(req),
  });
  const jsonPostHandler = ownAdapters ? createJsonPostHandler(trpcOptions) : trpcHandler;

  const health = new ConnectionHealthMonitor({
    intervalMs: config.CHANNELS_HEARTBEAT_MS,
    timeoutMs: config.CHANNELS_HEARTBEAT_TIMEOUT_MS,
    maxBufferedBytes: config.CHANNELS_MAX_BUFFERED_BYTES,
    maxMessagesPerSecond: config.CHANNELS_RATE_MESSAGES_PER_CONNECTION,
    logger,
    onTerminated: () => metrics.heartbeatTimeouts.inc(),
    onRateExceeded: () => metrics.rateLimited.inc(),
    onClosed: (connection, code, reason) => {
      metrics.connections.dec();
      if (logger.isLevelEnabled("debug"))
        logger.debug(
          {
            connectionId: connection.id,
            code,
            reason: reason.toString(),
            aliveMs: Date.now() - connection.connectedAt,
          },
          "connection closed",
        );
    },
  });
  health.startHeartbeat();

  registerDependencyGauge(services, options.health);
  let draining = false;
  const server = createServer((req, res) => {
    if (req.url?.startsWith(`${TRPC_PATH}/`)) {
      // Draining: a call that arrives now (on a kept-alive connection) goes elsewhere; only calls
      // already running are finished. Accepting it would risk cutting it after it was stored.
      if (draining) return void res.writeHead(503, { "retry-after": "1", connection: "close" }).end();
      if (req.method !== "POST") return trpcHandler(req, res);
      // A mutation is in flight from its arrival until its answer is sent: the drain waits for
      // both ends (token check and body before the procedure, the response after it).
      return void services.inflight.run(
        () =>
          new Promise<void>((resolve) => {
            res.once("close", resolve);
            void (isPlainJsonPost(req) ? jsonPostHandler : trpcHandler)(req, res);
          }),
      );
    }
    if (req.url?.split("?")[0] === INBOUND_WEBHOOK_PATH) {
      return void handleInboundWebhook(req, res, { services, logger, draining: () => draining });
    }
    handleOpsRequest(req, res, { services, health: options.health, draining: () => draining }).catch(
      (error) => {
        logger.error({ err: error }, "ops route failed");
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes, perMessageDeflate: false });
  const createWsContext = (ws: WsContextOptions) => {
    const token = ws.connectionParams?.token;
    return contextFor(typeof token === "string" ? token : undefined, ws);
  };
  const trpcWs = ownAdapters
    ? new TrpcWsHandler<AppRouter>({
        router: appRouter,
        directSubscriptions,
        encoder: channelsWsEncoder,
        onError,
        createContext: createWsContext,
      })
    : stockTrpcWs(wss, onError, createWsContext);

  const connectsPerIp = services.bus.rateLimiter({
    name: "connect-ip",
    points: config.CHANNELS_RATE_CONNECTIONS_PER_IP_PER_MIN,
    durationSeconds: 60,
  });

  server.on("upgrade", async (req, socket, head) => {
    if (!isTrpcPath(req.url)) return refuseUpgrade(socket, "404 Not Found");
    if (draining || wss.clients.size >= config.CHANNELS_MAX_CONNECTIONS) {
      return refuseUpgrade(socket, "503 Service Unavailable", "Retry-After: 5\r\n");
    }
    const ip = clientIp(req, config.CHANNELS_TRUST_PROXY);
    const decision = await connectsPerIp.consume(ip).catch(allowWithoutLimiter);
    if (!decision.allowed) {
      metrics.rateLimited.inc();
      const retryAfter = `Retry-After: ${Math.ceil(decision.retryAfterMs / 1000)}\r\n`;
      return refuseUpgrade(socket, "429 Too Many Requests", retryAfter);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      metrics.connections.inc();
      // Heartbeats, the message-rate cap, token expiry and the close bookkeeping: one record.
      const connection = health.track(ws, { ip });
      if (logger.isLevelEnabled("debug"))
        logger.debug({ connectionId: connection.id, ip }, "connection opened");
      trpcWs.accept(ws, req, socket);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    async close() {
      // Leave the load balancer, send clients elsewhere, finish accepted broadcasts, then go.
      draining = true;
      health.stop();
      server.close();
      server.closeIdleConnections();
      trpcWs.broadcastReconnectNotification();
      const drained = await services.inflight.drain(options.drainTimeoutMs ?? 5_000);
      if (!drained)
        logger.warn({ inflight: services.inflight.size }, "shutdown deadline passed with requests in flight");
      for (const ws of wss.clients) ws.close(1012, "server restarting");
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await services.audit.flush();
    },
  };
}
