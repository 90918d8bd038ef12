/**
 * How much CPU the rest of the machine used while a scenario ran: total busy time from /proc/stat
 * minus the time of this process and every process it started. These machines are shared; a run
 * with a lot of foreign CPU is flagged so its numbers are read with that in mind.
 */
import { readFileSync } from "node:fs";
import { livePids } from "./processes.ts";

const TICKS_PER_SECOND = 100;

/** Foreign CPU (% of one core) from which a run is flagged as noisy. */
export const NOISY_PERCENT = 25;

function machineBusyTicks(): number {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields.map(Number);
  return user + nice + system + irq + softirq + steal;
}

/** CPU time (user + system) of one process so far, in clock ticks (1/100 s). */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Percent of one core that `ticks` clock ticks over `ms` milliseconds amount to. */
export const ticksToPercent = (ticks: number, ms: number) =>
  ms > 0 ? (ticks / TICKS_PER_SECOND / (ms / 1000)) * 100 : 0;

export interface CpuSnapshot {
  at: number;
  machine: number;
  ours: Map<number, number>;
}

export function cpuSnapshot(): CpuSnapshot {
  const ours = new Map<number, number>();
  for (const pid of [process.pid, ...livePids()]) ours.set(pid, processTicks(pid));
  return { at: Date.now(), machine: machineBusyTicks(), ours };
}

/** Percent of one core used by processes this bench did not start, between two snapshots. */
export function foreignCpuPercent(start: CpuSnapshot, end: CpuSnapshot): number {
  let ours = 0;
  for (const [pid, ticks] of end.ours) ours += ticks - (start.ours.get(pid) ?? 0);
  const foreign = end.machine - start.machine - ours;
  const seconds = (end.at - start.at) / 1000;
  return seconds > 0 ? Math.max(0, (foreign / TICKS_PER_SECOND / seconds) * 100) : 0;
}
