/** Numbers as the table prints them. */
import type { Unit } from "./scenarios/types.ts";
import type { Spread } from "./stats.ts";

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return "-";
  switch (unit) {
    case "ms":
    case "KiB":
    case "MiB":
      return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
    case "per-s":
      return value >= 10_000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(0);
    case "fraction":
      return value >= 0.99995 && value <= 1.00005 ? "100%" : `${(value * 100).toFixed(2)}%`;
    case "pass":
      return value >= 1 ? "PASS" : "FAIL";
    case "count":
      return Math.round(value).toString();
    case "percent":
      return `${Math.round(value)}%`;
  }
}

export function formatSpread(spread: Spread | null | undefined, unit: Unit): string {
  if (!spread) return "-";
  const median = formatValue(spread.median, unit);
  if (spread.runs < 2 || unit === "pass") return median;
  const min = formatValue(spread.min, unit);
  const max = formatValue(spread.max, unit);
  return min === max ? median : `${median} (${min}-${max})`;
}

export function formatRatio(spread: Spread | null | undefined): string {
  if (!spread) return "-";
  const median = `${spread.median.toFixed(2)}x`;
  return spread.runs < 2 ? median : `${median} (${spread.min.toFixed(2)}-${spread.max.toFixed(2)})`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** A plain text table: first column left-aligned, the rest right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
