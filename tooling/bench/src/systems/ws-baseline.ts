import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { inspectPortFlag } from "../inspector.ts";
import {
  captureOutput,
  cpuProfileFlags,
  freePort,
  SERVER_CORE,
  spawnPinned,
  stopProcess,
  TSX_IMPORT,
  waitForHttp,
} from "../processes.ts";
import { type ClientConnection, type ServerAdapter, SystemUnavailable } from "./types.ts";

const SERVER = fileURLToPath(new URL("./ws-baseline-server.ts", import.meta.url));

export const wsBaselineServer: ServerAdapter = {
  async start(options) {
    if (options.instances !== 1) throw new SystemUnavailable("the bare ws baseline runs one instance");
    const port = await freePort();
    const inspectorPort = await freePort();
    const child = spawnPinned(
      SERVER_CORE,
      process.execPath,
      [
        inspectPortFlag(inspectorPort),
        ...cpuProfileFlags(process.env.BENCH_CPU_PROF_DIR),
        ...TSX_IMPORT,
        SERVER,
      ],
      {
        env: { ...process.env, PORT: String(port) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const output = captureOutput(child, "ws");
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/healthz`, 30_000, child);
    } catch (error) {
      await stopProcess(child);
      throw new Error(`${(error as Error).message}\n${output()}`);
    }
    return {
      urls: [url],
      pids: [child.pid!],
      inspectorPorts: [inspectorPort],
      clientConfig: { kind: "ws" },
      notes: [],
      prepareChannels: async () => {},
      stop: () => stopProcess(child),
    };
  },
};

type Pending = { resolve: () => void; reject: (error: Error) => void };

export async function connectWsBaseline(url: string): Promise<ClientConnection> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const subscribing = new Map<string, Pending[]>();
  const publishing = new Map<number, Pending>();
  let nextId = 1;
  let errors = 0;
  let callback: (channel: string, text: string) => void = () => {};
  const failAll = (error: Error) => {
    for (const list of subscribing.values()) for (const p of list) p.reject(error);
    for (const p of publishing.values()) p.reject(error);
    subscribing.clear();
    publishing.clear();
  };
  ws.on("error", () => errors++);
  ws.on("close", () => failAll(new Error("socket closed")));
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString()) as { t: string; ch: string; text: string; id: number };
    if (message.t === "msg") callback(message.ch, message.text);
    else if (message.t === "ack") {
      publishing.get(message.id)?.resolve();
      publishing.delete(message.id);
    } else if (message.t === "subok") {
      for (const p of subscribing.get(message.ch) ?? []) p.resolve();
      subscribing.delete(message.ch);
    }
  });
  return {
    subscribe: (channel) =>
      new Promise((resolve, reject) => {
        const list = subscribing.get(channel) ?? [];
        list.push({ resolve, reject });
        subscribing.set(channel, list);
        ws.send(JSON.stringify({ t: "sub", ch: channel }));
      }),
    onMessage: (cb) => {
      callback = cb;
    },
    publish: (channel, text) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        publishing.set(id, { resolve: () => resolve(undefined), reject });
        ws.send(JSON.stringify({ t: "pub", ch: channel, text, id }));
      }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      ws.close();
      const timer = setTimeout(() => ws.terminate(), 2_000);
      await closed;
      clearTimeout(timer);
    },
    problems: () => ({ errors, resets: 0 }),
  };
}
