import { execFileSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";
import { REPO_ROOT } from "./processes.ts";

const run = (command: string, args: string[]) => {
  try {
    return execFileSync(command, args, {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return null;
  }
};

/** Open-file limit of processes started from here (each server and worker gets its own). */
export const openFileLimit = () => Number(run("sh", ["-c", "ulimit -n"]) ?? Number.NaN);

export function machineInfo() {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    loadAverageAtStart: loadavg(),
    openFileLimit: openFileLimit(),
    // BENCH_GIT_COMMIT names the commit when the bench runs from an exported snapshot without .git.
    gitCommit: run("git", ["rev-parse", "HEAD"]) ?? process.env.BENCH_GIT_COMMIT ?? null,
    gitDirty: (run("git", ["status", "--porcelain", "--", "apps", "packages"]) ?? "") !== "",
    pinning: "server(s) on core 0, load generators and the bench on core 1 (taskset)",
  };
}
