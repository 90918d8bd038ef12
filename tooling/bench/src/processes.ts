import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { sleep } from "./clock.ts";

/** The core the server(s) run on, and the core the load generators (and this process) run on. */
export const SERVER_CORE = 0;
export const CLIENT_CORE = 1;

/** `--import <tsx loader>` as an absolute URL, so a child can run TypeScript from any directory. */
export const TSX_IMPORT = ["--import", import.meta.resolve("tsx")];

export const BENCH_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const children = new Set<ChildProcess>();

/** Spawns `command args` under `taskset -c core` (taskset execs, so the pid is the program's). */
export function spawnPinned(core: number, command: string, args: string[], options: SpawnOptions = {}) {
  const child = spawn("taskset", ["-c", String(core), command, ...args], options);
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/**
 * `--cpu-prof` into `dir` when it is set: the process writes CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile
 * there when it stops (thread 0 is the program; the others are tsx's loader threads), sampling every
 * BENCH_CPU_PROF_INTERVAL_US microseconds when that is set (Node's default is 1,000: a connect's
 * pieces of 10-50 µs need finer samples).
 */
export function cpuProfileFlags(dir: string | undefined): string[] {
  if (!dir) return [];
  const interval = process.env.BENCH_CPU_PROF_INTERVAL_US;
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...(interval ? [`--cpu-prof-interval=${interval}`] : [])];
}

/** Pids of the processes this run started that are still alive. */
export function livePids(): number[] {
  return [...children].filter((c) => !exited(c) && c.pid !== undefined).map((c) => c.pid!);
}

/** Pins every thread of this process to `core` (best effort). */
export function pinSelf(core: number) {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(core), String(process.pid)], { stdio: "ignore" });
  } catch {
    // Without taskset the numbers are noisier, not wrong.
  }
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}

/** Kills every process this run started that is still alive. */
export async function stopAll(graceMs = 2_000) {
  await Promise.all([...children].map((child) => stopProcess(child, graceMs)));
}

function killAllNow() {
  for (const child of children) if (!exited(child)) child.kill("SIGKILL");
}

/** On Ctrl-C, SIGTERM, an uncaught error or a plain exit: no server or worker is left behind. */
export function installCleanupHandlers(onSignal: () => Promise<void>) {
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping servers and workers...`);
      onSignal()
        .catch(() => {})
        .finally(() => {
          killAllNow();
          process.exit(130);
        });
    });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200; fails early when `child` exits. */
export async function waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child && exited(child))
      throw new Error(`process exited (code ${child.exitCode}) before ${url} was ready`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await response.text();
      if (response.status === 200) return;
      last = `${response.status} ${body.slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Keeps the last lines a child printed, to explain a failure. */
export function captureOutput(child: ChildProcess, label: string, keep = 40): () => string {
  const lines: string[] = [];
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) lines.push(`[${label}] ${line}`);
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  return () => lines.join("\n");
}
