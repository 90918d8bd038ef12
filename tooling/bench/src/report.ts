/** The terminal table, the bars from DESIGN.md, and the files under bench-results/. */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderChart } from "./chart.ts";
import { formatRatio, formatSpread, formatValue, textTable } from "./format.ts";
import { NOISY_PERCENT } from "./noise.ts";
import { type BenchResults, type Cell, ratioKey } from "./results.ts";
import type { Unit } from "./scenarios/types.ts";
import { SYSTEMS, type SystemSpec } from "./systems/index.ts";

export function renderTables(results: BenchResults): string {
  const blocks: string[] = [];
  for (const scenario of results.scenarios) {
    const shown = scenario.metrics.filter((m) => m.table);
    const header = ["system", ...shown.flatMap((m) => (m.ratio ? [m.label, "vs ws"] : [m.label]))];
    const rows = scenario.cells.map((cell) => {
      if (cell.skipped) return [cell.label, `n/a: ${cell.skipped}`];
      const failed = cell.runs.filter((r) => r.error).length;
      const label = failed ? `${cell.label} (${failed} run${failed > 1 ? "s" : ""} failed)` : cell.label;
      return [
        label,
        ...shown.flatMap((m) => {
          const value = formatSpread(cell.summary[m.key], m.unit);
          return m.ratio ? [value, formatRatio(cell.summary[ratioKey(m.key)])] : [value];
        }),
      ];
    });
    const notes = scenario.cells.flatMap((cell) => [
      ...cell.runs
        .filter((r) => (r.foreignCpu ?? 0) >= NOISY_PERCENT)
        .map(
          (r) =>
            `  ~ ${cell.label} run ${r.run}: other processes used ${r.foreignCpu}% of a core meanwhile (noisy)`,
        ),
      ...cell.runs
        .filter((r) => r.error)
        .map((r) => `  ! ${cell.label} run ${r.run}: ${r.error?.split("\n")[0]}`),
      ...[...new Set(cell.runs.flatMap((r) => r.result?.notes ?? []))].map((n) => `  * ${cell.label}: ${n}`),
    ]);
    blocks.push([`== ${scenario.name}: ${scenario.title}`, textTable(header, rows), ...notes].join("\n"));
  }
  return blocks.join("\n\n");
}

type Bar = {
  what: string;
  scenario: string;
  key: string;
  limit: number;
  better: "lower" | "higher";
  /** The systems the bar is about (default: every system that has the metric). */
  appliesTo?: (system: SystemSpec) => boolean;
} & ({ ratio: true } | { ratio: false; unit: Unit });

/** DESIGN.md "Numbers it is built to", as checks on this run. */
const BARS: Bar[] = [
  {
    what: "fan-out throughput vs ws >= 0.8x",
    scenario: "throughput",
    key: "rate",
    ratio: true,
    limit: 0.8,
    better: "higher",
  },
  {
    what: "delivery p99 vs ws <= 1.5x (1,000 subs, 20k/s)",
    scenario: "fanout-latency",
    key: "c1000.p99",
    ratio: true,
    limit: 1.5,
    better: "lower",
  },
  {
    what: "connect + subscribe p99 vs ws <= 1.5x",
    scenario: "connect-storm",
    key: "small.p99",
    ratio: true,
    limit: 1.5,
    better: "lower",
  },
  {
    what: "idle memory <= 12 KiB/conn",
    scenario: "idle-memory",
    key: "per-connection",
    ratio: false,
    limit: 12,
    better: "lower",
    unit: "KiB",
  },
  {
    what: "durable broadcasts on one channel >= 2,000/s (Postgres)",
    scenario: "durable-broadcasts",
    key: "peak-rate",
    ratio: false,
    limit: 2_000,
    better: "higher",
    unit: "per-s",
    appliesTo: (system) => Boolean(system.options.postgres),
  },
  {
    what: "every acknowledged broadcast stored once, seqs gap-free",
    scenario: "durable-broadcasts",
    key: "exactly-once",
    ratio: false,
    limit: 1,
    better: "higher",
    unit: "pass",
  },
  {
    what: "Redis hop <= 2 ms extra delivery p50",
    scenario: "redis-hop",
    key: "extra.p50",
    ratio: false,
    limit: 2,
    better: "lower",
    unit: "ms",
    appliesTo: (system) => system.isWedSync,
  },
];

const LOSS_KEYS = /(^|\.)(missing|duplicates|misdeliveries)$/;

export function renderBars(results: BenchResults, systems: string[]): string {
  const rows: string[][] = [];
  for (const system of systems) {
    for (const bar of BARS) {
      if (bar.appliesTo && !bar.appliesTo(SYSTEMS[system]!)) continue;
      const cell = results.scenarios
        .find((s) => s.name === bar.scenario)
        ?.cells.find((c) => c.system === system);
      const spread = cell?.summary[bar.ratio ? ratioKey(bar.key) : bar.key];
      if (!spread) continue;
      const ok = bar.better === "lower" ? spread.median <= bar.limit : spread.median >= bar.limit;
      const value = bar.ratio ? formatRatio(spread) : formatSpread(spread, bar.unit);
      rows.push([system, bar.what, value, ok ? "PASS" : "FAIL"]);
    }
    let lost = 0;
    let seen = false;
    for (const scenario of results.scenarios) {
      const cell = scenario.cells.find((c) => c.system === system);
      for (const run of cell?.runs ?? []) {
        for (const [key, value] of Object.entries(run.result?.metrics ?? {})) {
          if (!LOSS_KEYS.test(key) || value == null) continue;
          seen = true;
          lost += value;
        }
      }
    }
    if (seen)
      rows.push([
        system,
        "no message lost, duplicated or misdelivered",
        String(lost),
        lost ? "FAIL" : "PASS",
      ]);
  }
  const caveat = results.options.quick ? " (--quick: shrunk shapes, indicative only)" : "";
  return rows.length
    ? `== Bars (DESIGN.md)${caveat}\n${textTable(["system", "bar", "value", ""], rows)}`
    : "";
}

/** Writes <date>.json and <date>.svg, and copies them to latest.json / latest.svg. */
export function writeResults(results: BenchResults, dir: string): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  const json = join(dir, `${stamp}.json`);
  const svg = join(dir, `${stamp}.svg`);
  writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(svg, renderChart(results));
  copyFileSync(json, join(dir, "latest.json"));
  copyFileSync(svg, join(dir, "latest.svg"));
  return { json, svg };
}

/** One line per finished cell, for the progress log. */
export function cellLine(
  cell: Cell,
  keys: Array<{ key: string; label: string; unit: Parameters<typeof formatValue>[1] }>,
) {
  const last = cell.runs.at(-1);
  if (!last?.result) return last?.error ? `failed: ${last.error.split("\n")[0]}` : "";
  return keys
    .filter((k) => last.result!.metrics[k.key] != null)
    .map((k) => `${k.label} ${formatValue(last.result!.metrics[k.key]!, k.unit)}`)
    .join(", ");
}
