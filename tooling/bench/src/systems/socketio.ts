import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { inspectPortFlag } from "../inspector.ts";
import {
  captureOutput,
  freePort,
  SERVER_CORE,
  spawnPinned,
  stopProcess,
  TSX_IMPORT,
  waitForHttp,
} from "../processes.ts";
import { checkRedis, REDIS_URL } from "./redis.ts";
import { type ClientConnection, type ServerAdapter, SystemUnavailable } from "./types.ts";

const SERVER = fileURLToPath(new URL("./socketio-server.ts", import.meta.url));
const ACK_TIMEOUT_MS = 30_000;

export const socketIoServer: ServerAdapter = {
  async start(options) {
    if (options.instances > 1 && !options.redis)
      throw new SystemUnavailable("several Socket.IO instances need the Redis adapter");
    if (options.redis) await checkRedis();
    const key = `bench-sio-${randomBytes(4).toString("hex")}`;
    const instances = await Promise.all(
      Array.from({ length: options.instances }, async (_, i) => {
        const port = await freePort();
        const inspectorPort = await freePort();
        const child = spawnPinned(
          SERVER_CORE,
          process.execPath,
          [inspectPortFlag(inspectorPort), ...TSX_IMPORT, SERVER],
          {
            env: {
              ...process.env,
              PORT: String(port),
              SOCKETIO_REDIS_KEY: key,
              REDIS_URL: options.redis ? REDIS_URL : "",
            },
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        return { child, port, inspectorPort, output: captureOutput(child, `socketio-${i}`) };
      }),
    );
    const stop = () => Promise.all(instances.map(({ child }) => stopProcess(child))).then(() => {});
    try {
      await Promise.all(
        instances.map(({ child, port }) => waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, child)),
      );
    } catch (error) {
      await stop();
      throw new Error(`${(error as Error).message}\n${instances.map((i) => i.output()).join("\n")}`);
    }
    return {
      urls: instances.map(({ port }) => `http://127.0.0.1:${port}`),
      pids: instances.map(({ child }) => child.pid!),
      inspectorPorts: instances.map(({ inspectorPort }) => inspectorPort),
      clientConfig: { kind: "socketio" },
      notes: [],
      prepareChannels: async () => {},
      stop,
    };
  },
};

export async function connectSocketIo(url: string): Promise<ClientConnection> {
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: 30_000 });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  let errors = 0;
  socket.on("connect_error", () => errors++);
  return {
    subscribe: async (channel) => {
      await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("sub", channel);
    },
    onMessage: (callback) => {
      socket.on("msg", callback);
    },
    publish: async (channel, text) => {
      await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("pub", channel, text);
      return undefined;
    },
    close: async () => {
      socket.disconnect();
    },
    problems: () => ({ errors, resets: 0 }),
  };
}
