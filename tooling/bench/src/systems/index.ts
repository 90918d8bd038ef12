import { connectSocketIo, socketIoServer } from "./socketio.ts";
import type { BenchUser, ClientConfig, ClientConnection, ServerAdapter, StartOptions } from "./types.ts";
import { wedSyncServer } from "./wedsync.ts";
import { connectWedSync, tokenFor } from "./wedsync-client.ts";
import { connectWsBaseline, wsBaselineServer } from "./ws-baseline.ts";

export interface SystemSpec {
  name: string;
  label: string;
  server: ServerAdapter;
  options: StartOptions;
  /** WedSync-only scenarios (the seed's targets) skip the baselines. */
  isWedSync: boolean;
}

const spec = (
  name: string,
  label: string,
  server: ServerAdapter,
  options: StartOptions,
  isWedSync = false,
) => ({
  name,
  label,
  server,
  options,
  isWedSync,
});

/** Every system the bench knows, by the name `--systems` takes. `ws` is the baseline ratios refer to. */
export const SYSTEMS: Record<string, SystemSpec> = {
  ws: spec("ws", "bare ws", wsBaselineServer, { instances: 1 }),
  socketio: spec("socketio", "Socket.IO 4.8", socketIoServer, { instances: 1 }),
  "socketio-3": spec("socketio-3", "Socket.IO x3 + Redis", socketIoServer, { instances: 3, redis: true }),
  wedsync: spec("wedsync", "WedSync (PGlite)", wedSyncServer, { instances: 1 }, true),
  "wedsync-stock": spec(
    "wedsync-stock",
    "WedSync stock fan-out",
    wedSyncServer,
    { instances: 1, env: { CHANNELS_FANOUT_MODE: "stock" } },
    true,
  ),
  // Another version of WedSync beside this one, in the same run: BENCH_BASE_ROOT names its checkout.
  "wedsync-base": spec(
    "wedsync-base",
    "WedSync base checkout",
    wedSyncServer,
    { instances: 1, root: process.env.BENCH_BASE_ROOT ?? "" },
    true,
  ),
  "wedsync-prod": spec(
    "wedsync-prod",
    "WedSync (PG+Redis)",
    wedSyncServer,
    { instances: 1, postgres: true, redis: true },
    true,
  ),
  "wedsync-base-prod": spec(
    "wedsync-base-prod",
    "WedSync base checkout (PG+Redis)",
    wedSyncServer,
    { instances: 1, postgres: true, redis: true, root: process.env.BENCH_BASE_ROOT ?? "" },
    true,
  ),
  "wedsync-prod-3": spec(
    "wedsync-prod-3",
    "WedSync x3 (PG+Redis)",
    wedSyncServer,
    { instances: 3, postgres: true, redis: true },
    true,
  ),
};

export const BASELINE = "ws";

/**
 * What `user` presents when connecting (WedSync: a signed token; the baselines: nothing). Issued
 * before a timed connect starts: in production the identity provider issues it, not the connect.
 */
export async function credentialFor(config: ClientConfig, user: BenchUser): Promise<string | undefined> {
  return config.kind === "wedsync" ? tokenFor(config.secret, user) : undefined;
}

export function connectClient(
  config: ClientConfig,
  url: string,
  user: BenchUser,
  credential?: string,
): Promise<ClientConnection> {
  switch (config.kind) {
    case "ws":
      return connectWsBaseline(url);
    case "socketio":
      return connectSocketIo(url);
    case "wedsync":
      return connectWedSync(url, user, config.secret, credential);
  }
}
