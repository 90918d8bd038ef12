import type { Rig } from "../rig.ts";
import type { SystemSpec } from "../systems/index.ts";

export type Unit = "ms" | "per-s" | "KiB" | "MiB" | "count" | "fraction" | "pass" | "percent";

export interface MetricSpec {
  key: string;
  label: string;
  unit: Unit;
  better: "lower" | "higher";
  /** Shown in the terminal table (the JSON has every metric). */
  table?: boolean;
  /** Also shown as a ratio to bare ws in the same run. */
  ratio?: boolean;
}

export interface ScenarioOptions {
  quick: boolean;
  log(line: string): void;
}

export interface ScenarioResult {
  metrics: Record<string, number | null>;
  notes: string[];
}

export interface Scenario {
  name: string;
  title: string;
  metrics(options: ScenarioOptions): MetricSpec[];
  /** Why the scenario does not apply to a system, or null when it does. */
  skip(system: SystemSpec): string | null;
  run(rig: Rig, options: ScenarioOptions): Promise<ScenarioResult>;
}

/** Scales a count down for --quick. */
export const sized = (options: ScenarioOptions, full: number, quick = Math.round(full / 5)) =>
  options.quick ? quick : full;

export const oneInstanceOnly = (system: SystemSpec) =>
  system.options.instances > 1 ? "measured per instance: runs on one-instance systems" : null;
