import type { IncomingMessage } from "node:http";
import type { TRPCError } from "@trpc/server";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import { type AppRouter, appRouter, type Context } from "@wedsync/channels";
import type { WebSocket, WebSocketServer } from "ws";
import type { WsContextOptions } from "./trpc-ws-connection.ts";

/**
 * tRPC's own WebSocket adapter with its per-subscriber encoding: `CHANNELS_FANOUT_MODE=stock`, the
 * reference that the default handler (trpc-ws-connection.ts) is tested and benchmarked against.
 */
export function stockTrpcWs(
  wss: WebSocketServer,
  onError: (report: { error: TRPCError; path?: string; type: string }) => void,
  createContext: (options: WsContextOptions) => Promise<Context>,
) {
  const handler = applyWSSHandler<AppRouter>({
    wss,
    router: appRouter,
    onError,
    // Heartbeats are WebSocket ping frames from ConnectionHealthMonitor, not tRPC's text PINGs.
    keepAlive: { enabled: false },
    createContext: ({ info, res }) =>
      createContext({ connectionParams: info.connectionParams, socket: res, outbound: res }),
  });
  return {
    accept(socket: WebSocket, req: IncomingMessage) {
      // tRPC's handler keeps the request it is given for the socket's whole life, and reads only its
      // URL (for ?connectionParams=1) and Host; the IncomingMessage itself (headers, raw headers,
      // stream state: about 1 KiB) can go once the upgrade is done.
      const upgradeRequest = { url: req.url, headers: { host: req.headers.host } };
      wss.emit("connection", socket, upgradeRequest as IncomingMessage);
    },
    broadcastReconnectNotification: handler.broadcastReconnectNotification,
  };
}
