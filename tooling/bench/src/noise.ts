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

/** The fields of /proc/<pid>/stat after the command name (the first is the state, field 3). */
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) of one process so far, in clock ticks (1/100 s). */
export function processTicks(pid: number): number {
  const fields = statFields(pid);
  return fields ? Number(fields[11]) + Number(fields[12]) : 0;
}

/** CPU time of this process's children that exited and were reaped, in clock ticks. */
function reapedChildrenTicks(): number {
  const fields = statFields("self");
  return fields ? Number(fields[13]) + Number(fields[14]) : 0;
}

/** Milliseconds of CPU that `ticks` clock ticks amount to. */
export const ticksToMs = (ticks: number) => (ticks / TICKS_PER_SECOND) * 1000;

/** Percent of one core that `ticks` clock ticks over `ms` milliseconds amount to. */
export const ticksToPercent = (ticks: number, ms: number) =>
  ms > 0 ? (ticks / TICKS_PER_SECOND / (ms / 1000)) * 100 : 0;

export interface CpuSnapshot {
  at: number;
  machine: number;
  /** This process and every child still running, by pid. */
  ours: Map<number, number>;
  /** Children that exited (a server that only migrated a template, a stopped worker): see foreignCpuPercent. */
  reaped: number;
}

export function cpuSnapshot(): CpuSnapshot {
  const ours = new Map<number, number>();
  for (const pid of [process.pid, ...livePids()]) ours.set(pid, processTicks(pid));
  return { at: Date.now(), machine: machineBusyTicks(), ours, reaped: reapedChildrenTicks() };
}

/**
 * Percent of one core used by processes this bench did not start, between two snapshots. A child
 * that exited in between has its whole life's CPU in `reaped`; what it had used by the first
 * snapshot was counted there already.
 */
export function foreignCpuPercent(start: CpuSnapshot, end: CpuSnapshot): number {
  let ours = end.reaped - start.reaped;
  for (const [pid, ticks] of end.ours) ours += ticks - (start.ours.get(pid) ?? 0);
  for (const [pid, ticks] of start.ours) if (!end.ours.has(pid)) ours -= ticks;
  const foreign = end.machine - start.machine - ours;
  const seconds = (end.at - start.at) / 1000;
  return seconds > 0 ? Math.max(0, (foreign / TICKS_PER_SECOND / seconds) * 100) : 0;
}
