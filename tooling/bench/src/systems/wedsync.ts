/**
 * WedSync's server side: apps/server as `pnpm start` runs it (its bundle, built once per run), pinned
 * to the server core, with limits set out of the bench's way; embedded (PGlite, in-process fan-out)
 * or Postgres + Redis, 1..n instances.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sleep, withTimeout } from "../clock.ts";
import { inspectPortFlag } from "../inspector.ts";
import {
  captureOutput,
  cpuProfileFlags,
  freePort,
  REPO_ROOT,
  SERVER_CORE,
  spawnPinned,
  stopProcess,
  TSX_IMPORT,
  waitForHttp,
} from "../processes.ts";
import { checkRedis, REDIS_URL } from "./redis.ts";
import { type RunningSystem, type ServerAdapter, type StartOptions, SystemUnavailable } from "./types.ts";
import { connectWedSync, createChannels, replayChannel, scrapeTotals } from "./wedsync-client.ts";
import { forgetTemplate, pgliteStorage, postgresStorage } from "./wedsync-storage.ts";

const serverDirOf = (root: string) => join(root, "apps/server");
const mainOf = (root: string) => join(serverDirOf(root), "src/main.ts");
const buildScriptOf = (root: string) => join(serverDirOf(root), "scripts/build.mjs");

/** Per checkout: what node runs to start its server, once its bundle is built. */
const programs = new Map<string, string[]>();

/**
 * The server's program as `pnpm start` runs it: the bundle its build script makes, with source maps.
 * A checkout from before the server was bundled (a `wedsync-base` of an older commit) runs its
 * source under tsx, as its own `pnpm start` did.
 */
function programOf(root: string): string[] {
  let program = programs.get(root);
  if (program === undefined) {
    if (existsSync(buildScriptOf(root))) {
      execFileSync(process.execPath, [buildScriptOf(root)], { cwd: serverDirOf(root), stdio: "pipe" });
      program = ["--enable-source-maps", join(serverDirOf(root), "dist/main.mjs")];
    } else {
      program = [...TSX_IMPORT, mainOf(root)];
    }
    programs.set(root, program);
  }
  return program;
}
const HIGH = "100000000";

/** Limits set out of the way: the bench measures the data path, not the throttles. */
const BENCH_LIMITS = {
  LOG_LEVEL: "warn",
  NODE_ENV: "production",
  CHANNELS_MAX_CONNECTIONS: "100000",
  CHANNELS_TIER_FREE: "100000",
  CHANNELS_TIER_PAID: "100000",
  CHANNELS_RATE_BROADCASTS_PER_MIN: HIGH,
  CHANNELS_RATE_SUBSCRIBES_PER_HOUR: HIGH,
  CHANNELS_RATE_MESSAGES_PER_CONNECTION: HIGH,
  CHANNELS_RATE_CONNECTIONS_PER_IP_PER_MIN: HIGH,
};

/** The environment minus anything that would point the server at another database or secret. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key === "DATABASE_URL" || key === "REDIS_URL" || key.startsWith("CHANNELS_")) continue;
    env[key] = value;
  }
  return env;
}

/** BENCH_WEDSYNC_ENV="K=V,K=V": extra server environment, e.g. to compare a setting. */
function extraEnv(): Record<string, string> {
  const pairs = (process.env.BENCH_WEDSYNC_ENV ?? "").split(",").filter(Boolean);
  return Object.fromEntries(
    pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
}

interface Instance {
  url: string;
  inspectorPort: number;
  child: ReturnType<typeof spawnPinned>;
  output(): string;
}

async function launch(count: number, env: Record<string, string>, root = REPO_ROOT): Promise<Instance[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const port = await freePort();
      const inspectorPort = await freePort();
      const child = spawnPinned(
        SERVER_CORE,
        process.execPath,
        [
          inspectPortFlag(inspectorPort),
          ...cpuProfileFlags(process.env.BENCH_CPU_PROF_DIR),
          ...programOf(root),
        ],
        {
          cwd: serverDirOf(root),
          env: {
            ...cleanEnv(),
            ...BENCH_LIMITS,
            ...env,
            PORT: String(port),
            CHANNELS_INSTANCE_ID: `bench-${i}`,
          },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      return {
        child,
        url: `http://127.0.0.1:${port}`,
        inspectorPort,
        output: captureOutput(child, `wedsync-${i}`),
      };
    }),
  );
}

const stopAllOf = (instances: Instance[]) =>
  Promise.all(instances.map(({ child }) => stopProcess(child, 5_000))).then(() => {});

async function waitReady(instances: Instance[], requireBus: boolean) {
  await Promise.all(instances.map(({ child, url }) => waitForHttp(`${url}/readyz`, 90_000, child)));
  if (!requireBus) return;
  for (const { url } of instances) {
    const body = (await (await fetch(`${url}/readyz`)).json()) as { status: string; bus: string };
    if (body.status !== "ready")
      throw new SystemUnavailable(`${url}/readyz is ${body.status}: bus ${body.bus}`);
  }
}

const SUBSCRIPTIONS = "channels_subscriptions";
/** The store's wait per broadcast: how many were observed and their seconds in all. */
const STORE_WAIT = ["channels_broadcast_store_seconds_count", "channels_broadcast_store_seconds_sum"];

/** A broadcast on the last instance must reach a subscriber on the first: Redis fan-out works. */
async function checkCrossInstance(system: RunningSystem, secret: string) {
  const channel = "supplier:dashboard:bench-probe";
  await system.prepareChannels([channel]);
  const user = { id: "bench-probe", suppliers: ["bench-probe"] };
  const subscriber = await connectWedSync(system.urls[0]!, user, secret);
  const publisher = await connectWedSync(system.urls.at(-1)!, user, secret);
  try {
    let received = false;
    subscriber.onMessage(() => {
      received = true;
    });
    await withTimeout(subscriber.subscribe(channel), 10_000, "probe subscription");
    const deadline = Date.now() + 10_000;
    while ((await scrapeTotals([system.urls[0]!], [SUBSCRIPTIONS]))[0]! < 1 && Date.now() < deadline)
      await sleep(50);
    await publisher.publish(channel, "probe");
    for (let i = 0; i < 50 && !received; i++) await sleep(100);
    if (!received)
      throw new SystemUnavailable(
        "cross-instance fan-out does not work yet: a broadcast on the last instance did not reach a subscriber on the first within 5 s",
      );
  } finally {
    await Promise.all([subscriber.close(), publisher.close()]);
  }
}

/** Starts one embedded server on `dir` so that its migrations run, then stops it. */
async function migrateDataDir(dir: string) {
  const instances = await launch(1, {
    CHANNELS_DATA_DIR: dir,
    CHANNELS_JWT_SECRET: randomBytes(24).toString("hex"),
  });
  try {
    await waitReady(instances, false);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${instances[0]!.output()}`);
  } finally {
    await stopAllOf(instances);
  }
}

async function startOnce(options: StartOptions): Promise<RunningSystem> {
  const secret = randomBytes(24).toString("hex");
  const storage = options.postgres ? await postgresStorage() : await pgliteStorage(migrateDataDir);
  const instances = await launch(
    options.instances,
    {
      ...storage.env,
      CHANNELS_JWT_SECRET: secret,
      ...(options.redis ? { REDIS_URL } : {}),
      ...options.env,
      ...extraEnv(),
    },
    options.root,
  );
  const urls = instances.map(({ url }) => url);
  const system: RunningSystem = {
    urls,
    pids: instances.map(({ child }) => child.pid!),
    inspectorPorts: instances.map(({ inspectorPort }) => inspectorPort),
    clientConfig: { kind: "wedsync", secret },
    notes: options.root === undefined ? [] : [`server from ${options.root} at ${commitOf(options.root)}`],
    prepareChannels: (names) => createChannels(instances[0]!.url, secret, names),
    replayChannel: (name, untilSeq) => replayChannel(instances[0]!.url, secret, name, untilSeq),
    liveSubscriptions: async () => (await scrapeTotals(urls, [SUBSCRIPTIONS]))[0]!,
    storeWait: async () => {
      const [broadcasts, seconds] = await scrapeTotals(urls, STORE_WAIT);
      return { broadcasts: broadcasts!, seconds: seconds! };
    },
    async stop() {
      await stopAllOf(instances);
      await storage.release();
    },
  };
  try {
    await waitReady(instances, Boolean(options.redis));
    if (options.instances > 1) await checkCrossInstance(system, secret);
  } catch (error) {
    await system.stop();
    if (error instanceof SystemUnavailable) throw error;
    throw new Error(`${(error as Error).message}\n${instances.map((i) => i.output()).join("\n")}`);
  }
  return system;
}

function commitOf(root: string): string {
  try {
    return execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "an unknown commit";
  }
}

export const wedSyncServer: ServerAdapter = {
  async start(options) {
    // "" is BENCH_BASE_ROOT unset: relative to the working directory it could name this checkout.
    if (options.root !== undefined && (options.root === "" || !existsSync(mainOf(options.root))))
      throw new SystemUnavailable(
        `no WedSync checkout at "${options.root}": set BENCH_BASE_ROOT to one (e.g. a git worktree, installed)`,
      );
    if (options.instances > 1 && !(options.postgres && options.redis))
      throw new SystemUnavailable("several WedSync instances need Postgres and Redis");
    if (options.redis) await checkRedis();
    try {
      return await startOnce(options);
    } catch (error) {
      if (options.postgres || error instanceof SystemUnavailable) throw error;
      // The migrated template may be stale (migrations changed since it was made): once more, from scratch.
      forgetTemplate();
      return startOnce(options);
    }
  },
};
