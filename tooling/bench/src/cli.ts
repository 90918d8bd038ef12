/** `pnpm bench`: runs the scenarios against the systems, prints the table, writes bench-results/. */
import { join } from "node:path";
import { parseArgs, type RunOptions } from "./args.ts";
import { withTimeout } from "./clock.ts";
import { formatDuration } from "./format.ts";
import { machineInfo, openFileLimit } from "./machine.ts";
import { cpuSnapshot, foreignCpuPercent, NOISY_PERCENT } from "./noise.ts";
import { CLIENT_CORE, installCleanupHandlers, pinSelf, REPO_ROOT, stopAll } from "./processes.ts";
import { cellLine, renderBars, renderTables, writeResults } from "./report.ts";
import { type BenchResults, type Cell, type ScenarioResults, summarizeResults } from "./results.ts";
import { Rig } from "./rig.ts";
import { SCENARIOS } from "./scenarios/index.ts";
import { BASELINE, SYSTEMS } from "./systems/index.ts";
import { SystemUnavailable } from "./systems/types.ts";
import { measureWakePenalty } from "./wake-penalty.ts";
import { buildWorker } from "./worker-pool.ts";

/** No scenario run may take longer than this, whatever hangs. */
const CELL_TIMEOUT_MS = 10 * 60_000;

let currentRig: Rig | undefined;

async function main() {
  let options: RunOptions;
  try {
    options = parseArgs(process.argv.slice(2), join(REPO_ROOT, "bench-results"));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  pinSelf(CLIENT_CORE);
  installCleanupHandlers(async () => {
    await currentRig?.stop();
  });
  const limit = openFileLimit();
  const needed = options.quick ? 3_000 : 11_000;
  if (!(limit >= needed))
    console.warn(
      `warning: ulimit -n is ${limit}; idle-memory needs ~${needed} open files per process (run \`ulimit -n 65536\` first)`,
    );

  await buildWorker();
  const wakePenalty = measureWakePenalty();
  if (wakePenalty)
    console.log(
      `server core after 50 ms asleep: fixed work took ${wakePenalty.ratio.toFixed(2)}x as long as after 1 ms (p50 ${wakePenalty.afterIdleMs.toFixed(2)} against ${wakePenalty.afterShortSleepMs.toFixed(2)} ms)`,
    );
  const started = Date.now();
  const results: BenchResults = {
    startedAt: new Date(started).toISOString(),
    options: {
      systems: options.systems,
      scenarios: options.scenarios,
      runs: options.runs,
      quick: options.quick,
    },
    machine: { ...machineInfo(), wakePenalty },
    scenarios: [],
  };
  const scenarios = SCENARIOS.filter((s) => options.scenarios.includes(s.name));
  const unavailable = new Map<string, string>();
  /** Scenario progress lines carry the seconds since the cell started. */
  const scenarioOptions = (since = Date.now()) => ({
    quick: options.quick,
    log: (line: string) => console.log(`      +${((Date.now() - since) / 1000).toFixed(1)}s ${line}`),
  });
  for (const scenario of scenarios) {
    const entry: ScenarioResults = {
      name: scenario.name,
      title: scenario.title,
      metrics: scenario.metrics(scenarioOptions()),
      cells: options.systems.map((name): Cell => {
        const spec = SYSTEMS[name]!;
        const skipped = scenario.skip(spec);
        return { system: name, label: spec.label, runs: [], summary: {}, ...(skipped ? { skipped } : {}) };
      }),
    };
    results.scenarios.push(entry);
  }

  const total =
    options.runs * results.scenarios.reduce((n, s) => n + s.cells.filter((c) => !c.skipped).length, 0);
  let step = 0;
  console.log(
    `bench: ${options.systems.join(", ")} x ${options.scenarios.join(", ")}, ${options.runs} run(s)${options.quick ? ", --quick" : ""}`,
  );
  for (let run = 1; run <= options.runs; run++) {
    for (const [s, scenario] of scenarios.entries()) {
      for (const cell of results.scenarios[s]!.cells) {
        if (cell.skipped) continue;
        step++;
        const spec = SYSTEMS[cell.system]!;
        const why = unavailable.get(cell.system);
        if (why) {
          cell.skipped = `not available: ${why}`;
          continue;
        }
        console.log(
          `[${step}/${total}] ${scenario.name} · ${spec.label} · run ${run}/${options.runs} · ${formatDuration(Date.now() - started)} elapsed`,
        );
        const cellStarted = Date.now();
        const cpuStart = cpuSnapshot();
        try {
          currentRig = await Rig.start(spec);
          console.log(`      +${((Date.now() - cellStarted) / 1000).toFixed(1)}s server(s) ready`);
          const result = await withTimeout(
            scenario.run(currentRig, scenarioOptions(cellStarted)),
            CELL_TIMEOUT_MS,
            scenario.name,
          );
          const foreignCpu = Math.round(foreignCpuPercent(cpuStart, cpuSnapshot()));
          result.notes.unshift(...currentRig.system.notes);
          cell.runs.push({ run, seconds: (Date.now() - cellStarted) / 1000, foreignCpu, result });
        } catch (error) {
          if (error instanceof SystemUnavailable) {
            unavailable.set(cell.system, error.message);
            cell.skipped = `not available: ${error.message}`;
            console.log(`      not available: ${error.message}`);
          } else {
            cell.runs.push({
              run,
              seconds: (Date.now() - cellStarted) / 1000,
              error: (error as Error).stack ?? String(error),
            });
          }
        } finally {
          await currentRig
            ?.stop()
            .catch((error) => console.error(`      cleanup: ${(error as Error).message}`));
          currentRig = undefined;
          await stopAll();
        }
        if (cell.runs.at(-1)?.run === run) {
          const shown = results.scenarios[s]!.metrics.filter((m) => m.table && m.unit !== "pass");
          const foreign = cell.runs.at(-1)?.foreignCpu ?? 0;
          const noisy = foreign >= NOISY_PERCENT ? ` [other processes used ${foreign}% of a core]` : "";
          console.log(`      ${formatDuration(Date.now() - cellStarted)}: ${cellLine(cell, shown)}${noisy}`);
        }
      }
    }
  }
  // Systems found unavailable late are marked so in every scenario.
  for (const scenario of results.scenarios)
    for (const cell of scenario.cells) {
      const why = unavailable.get(cell.system);
      if (why && !cell.runs.some((r) => r.result)) cell.skipped ??= `not available: ${why}`;
    }

  summarizeResults(results, BASELINE);
  results.finishedAt = new Date().toISOString();
  results.seconds = (Date.now() - started) / 1000;
  console.log(`\n${renderTables(results)}\n`);
  const bars = renderBars(
    results,
    options.systems.filter((s) => s !== BASELINE),
  );
  if (bars) console.log(`${bars}\n`);
  const files = writeResults(results, options.out);
  console.log(`results: ${files.json}\nchart:   ${files.svg}\ntook ${formatDuration(Date.now() - started)}`);
}

main().then(
  () => process.exit(0),
  async (error) => {
    console.error(error);
    await currentRig?.stop().catch(() => {});
    await stopAll();
    process.exit(1);
  },
);
