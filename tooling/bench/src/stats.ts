/** Percentile summaries of latency samples and of repeated runs. */

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** Joins sample arrays from several workers. */
export function concatSamples(parts: ArrayLike<number>[]): Float64Array {
  const total = parts.reduce((n, part) => n + part.length, 0);
  const out = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** Median and min-max of one metric over runs; NaN/null values (failed runs) are left out. */
export function spreadOf(values: Array<number | null>): Spread | null {
  const good = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (good.length === 0) return null;
  const mid = Math.floor(good.length / 2);
  const median = good.length % 2 ? good[mid]! : (good[mid - 1]! + good[mid]!) / 2;
  return { median, min: good[0]!, max: good[good.length - 1]!, runs: good.length };
}

/** Growable Float32Array for latency samples (millisecond values keep microsecond precision). */
export class SampleBuffer {
  private data = new Float32Array(4_096);
  length = 0;

  push(value: number) {
    if (this.length === this.data.length) {
      const grown = new Float32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }

  toArray(): Float32Array {
    return this.data.slice(0, this.length);
  }

  clear() {
    this.data = new Float32Array(4_096);
    this.length = 0;
  }
}
