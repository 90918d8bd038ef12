/**
 * How much slower code runs on the server core right after its process slept, as servers do
 * between the fan-out scenario's broadcasts (50 ms apart at 1,000 subscribers). On these virtual
 * machines a core that idled comes back slow, and code with a bigger footprint suffers more: in a
 * probe on 2026-11-30 a fixed piece of JavaScript took 1.4x as long after 50 ms asleep as after
 * 1 ms, and a PGlite append 3-5x (0.9-1.3 ms back to back, 3.7-6.1 ms after 50 ms asleep; 1.0-1.2 ms
 * with the caches thrashed but no sleep). A ratio against bare `ws`, whose broadcast path is small, moves
 * with this figure, so every bench run measures it first.
 */
import { execFileSync } from "node:child_process";
import { SERVER_CORE } from "./processes.ts";

export interface WakePenalty {
  /** p50 ms of the fixed work after sleeping 1 ms. */
  afterShortSleepMs: number;
  /** p50 ms of the same work after sleeping 50 ms. */
  afterIdleMs: number;
  ratio: number;
}

/** Runs in a child pinned to the server core: alternating short and long sleeps, each followed by the work. */
const PROBE = `
const value = { a: [1, 2, 3], b: "wedding ".repeat(12), c: { d: 1, e: [4, 5, 6] } };
const work = () => { let n = 0; for (let i = 0; i < 2000; i++) n += JSON.stringify(value).length; return n; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const timed = () => { const start = performance.now(); work(); return performance.now() - start; };
for (let i = 0; i < 50; i++) work();
const short = [], idle = [];
for (let round = 0; round < 60; round++) {
  await sleep(1); short.push(timed());
  await sleep(50); idle.push(timed());
}
const median = (list) => list.sort((a, b) => a - b)[list.length >> 1];
console.log(JSON.stringify({ short: median(short), idle: median(idle) }));
`;

/** About 3.5 s; null where the probe cannot run (no taskset). */
export function measureWakePenalty(): WakePenalty | null {
  try {
    const output = execFileSync(
      "taskset",
      ["-c", String(SERVER_CORE), process.execPath, "--input-type=module", "-e", PROBE],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 },
    );
    const { short, idle } = JSON.parse(output) as { short: number; idle: number };
    return { afterShortSleepMs: short, afterIdleMs: idle, ratio: idle / short };
  } catch {
    return null;
  }
}
