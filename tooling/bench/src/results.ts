/** The shape of a bench run's results (also the JSON written to bench-results/). */
import type { MetricSpec, ScenarioResult } from "./scenarios/types.ts";
import { type Spread, spreadOf } from "./stats.ts";

export interface CellRun {
  run: number;
  seconds: number;
  /** CPU used meanwhile by processes the bench did not start (incl. Postgres/Redis), % of one core. */
  foreignCpu?: number;
  result?: ScenarioResult;
  error?: string;
}

export interface Cell {
  system: string;
  label: string;
  /** Why the scenario was not run on this system (does not apply, or the system is not available). */
  skipped?: string;
  runs: CellRun[];
  /** Median and min-max over runs, per metric; `<key>/ws` is the ratio to bare ws in the same run. */
  summary: Record<string, Spread | null>;
}

export interface ScenarioResults {
  name: string;
  title: string;
  metrics: MetricSpec[];
  cells: Cell[];
}

export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  seconds?: number;
  options: { systems: string[]; scenarios: string[]; runs: number; quick: boolean };
  machine: Record<string, unknown>;
  scenarios: ScenarioResults[];
}

export const ratioKey = (key: string) => `${key}/ws`;

/** Fills every cell's summary: medians and spreads, and ratios to the baseline run by run. */
export function summarizeResults(results: BenchResults, baseline: string) {
  for (const scenario of results.scenarios) {
    const base = scenario.cells.find((c) => c.system === baseline);
    for (const cell of scenario.cells) {
      cell.summary = {};
      for (const metric of scenario.metrics) {
        const values = cell.runs.map((r) => r.result?.metrics[metric.key] ?? null);
        cell.summary[metric.key] = spreadOf(values);
        if (!metric.ratio || !base) continue;
        const ratios = cell.runs.map((r) => {
          const mine = r.result?.metrics[metric.key];
          const theirs = base.runs.find((b) => b.run === r.run)?.result?.metrics[metric.key];
          return mine != null && theirs != null && theirs !== 0 ? mine / theirs : null;
        });
        cell.summary[ratioKey(metric.key)] = spreadOf(ratios);
      }
    }
  }
}
