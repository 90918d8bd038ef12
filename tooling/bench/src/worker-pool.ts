/** The bench's side of the workers: spawn them on the client core and call them over IPC. */
import type { ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { bundleInPlace } from "@wedsync/bundle";
import { CLIENT_CORE, cpuProfileFlags, spawnPinned, stopProcess } from "./processes.ts";
import type { WorkerReply, WorkerRequest } from "./worker-protocol.ts";

const WORKER = new URL("../dist/worker.mjs", import.meta.url);

/**
 * The load generators run bundled, as clients ship (a browser or mobile app's bundler keeps no
 * function names), not under tsx: tsx's keepNames gave each WedSync client about fifteen closures
 * with a property array of their own, a third of what a connected client kept (11.7 KiB), which its
 * load generator then copied through every scavenge. Every system's clients run from the same bundle.
 */
export const buildWorker = () => bundleInPlace(new URL("./worker.ts", import.meta.url), WORKER);

export class WorkerHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    child.on("message", (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.result);
      else waiter?.reject(new Error(`${label}: ${reply.error}`));
    });
    child.once("exit", (code, signal) => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`${label} exited (${signal ?? code}) with a request pending`));
      this.pending.clear();
    });
  }

  request<T>(request: WorkerRequest, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${request.type} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...request, id });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  stop() {
    return stopProcess(this.child, 2_000);
  }
}

/** Niceness of the publisher: its timers must fire on time even when the subscribers keep core 1 busy. */
const PUBLISHER_PRIORITY = -10;

/**
 * V8 decides once, by timing, whether an allocation site's objects go straight to the old generation.
 * In a load generator the site that loses is ws's Receiver.dataMessage (`this._fragments = []`, one per
 * received message): in a connect storm every such array outlives its scavenge (it waits for the
 * connection's next message), so V8 may tenure the site. From then on every message's array is born
 * old and keeps its young Buffer alive through the remembered set until a mark-compact: the worker's
 * old generation grew ~1.7 MB per scavenge, scavenges took 5-50 ms instead of 0.5-5, and the
 * deliveries behind them waited. Seen (`--trace-pretenuring-statistics`, the site's address from
 * `%DebugPrint`) in bare ws's load generators as in WedSync's, in whichever run the decision fell
 * that way. The harness measures servers, so its instruments run without the heuristic, every
 * system's alike.
 */
const LOAD_GENERATOR_FLAGS = ["--max-old-space-size=4096", "--no-allocation-site-pretenuring"];

export function spawnWorker(label: string): WorkerHandle {
  const child = spawnPinned(
    CLIENT_CORE,
    process.execPath,
    [
      ...LOAD_GENERATOR_FLAGS,
      ...cpuProfileFlags(process.env.BENCH_WORKER_CPU_PROF_DIR),
      "--enable-source-maps",
      fileURLToPath(WORKER),
    ],
    { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" },
  );
  if (label === "publisher" && child.pid) {
    try {
      setPriority(child.pid, PUBLISHER_PRIORITY);
    } catch {
      // Not allowed (not root): the publisher runs at normal priority, its lag is reported.
    }
  }
  return new WorkerHandle(label, child);
}
