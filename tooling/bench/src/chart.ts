/**
 * A hand-written SVG: grouped bars of fan-out latency (p50 and p99 per system, per case), of
 * deliveries per second (throughput and many-weddings per system), of durable broadcasts per second
 * (per broadcasts in flight) and of the Redis hop (p50 and p99 per path), medians over runs, with
 * value labels. A panel appears when its scenario ran.
 */
import { formatValue } from "./format.ts";
import type { BenchResults } from "./results.ts";
import { INFLIGHT_LEVELS, levelKey } from "./scenarios/durable-broadcasts.ts";
import { HOP_PATHS } from "./scenarios/redis-hop.ts";
import type { Unit } from "./scenarios/types.ts";

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f"];
const WIDTH = 1100;
const PANEL_HEIGHT = 360;
const MARGIN = { left: 80, right: 20, top: 60, bottom: 60 };

interface Series {
  label: string;
  color: string;
}

interface Group {
  label: string;
  /** One entry per series: the bars (e.g. p50, p99) drawn side by side, or null when missing. */
  values: Array<Array<number | null>>;
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceCeiling(value: number): { max: number; step: number } {
  if (!(value > 0)) return { max: 1, step: 0.2 };
  const rough = value / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  return { max: Math.ceil(value / step) * step, step };
}

function tickLabel(value: number, step: number): string {
  if (value >= 1_000 && step >= 1_000) return `${value / 1_000}k`;
  return step >= 1 ? String(Math.round(value)) : value.toFixed(1);
}

/** "200@10ms" -> "200 subscribers, a broadcast every 10 ms". */
function caseLabel(label: string): string {
  const match = /^(\d+)@(\d+)ms$/.exec(label);
  return match ? `${match[1]} subscribers, a broadcast every ${match[2]} ms` : label;
}

function panel(options: {
  top: number;
  title: string;
  yLabel: string;
  unit: Unit;
  series: Series[];
  groups: Group[];
  barNames: string[];
}): string {
  const { top, series, groups, barNames } = options;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const x0 = MARGIN.left;
  const y0 = top + MARGIN.top + plotH;
  const all = groups.flatMap((g) => g.values.flat()).filter((v): v is number => v !== null);
  const { max, step } = niceCeiling(Math.max(0, ...all));
  const y = (v: number) => y0 - (v / max) * plotH;
  const out: string[] = [];
  out.push(`<text x="${x0}" y="${top + 24}" class="title">${escapeXml(options.title)}</text>`);
  for (let v = 0; v <= max + step / 2; v += step) {
    out.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`);
    out.push(
      `<text x="${x0 - 8}" y="${y(v) + 4}" class="tick" text-anchor="end">${tickLabel(v, step)}</text>`,
    );
  }
  out.push(`<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y0 - plotH}" class="axis"/>`);
  out.push(`<line x1="${x0}" x2="${x0 + plotW}" y1="${y0}" y2="${y0}" class="axis"/>`);
  out.push(
    `<text transform="translate(${x0 - 60},${y0 - plotH / 2}) rotate(-90)" class="axis-label" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  );
  const groupW = plotW / Math.max(1, groups.length);
  const bars = series.length * barNames.length;
  const barW = Math.min(36, (groupW * 0.8) / Math.max(1, bars));
  groups.forEach((group, g) => {
    const start = x0 + g * groupW + (groupW - barW * bars) / 2;
    group.values.forEach((values, s) => {
      values.forEach((value, b) => {
        const x = start + (s * barNames.length + b) * barW;
        const color = series[s]!.color;
        if (value === null) {
          out.push(`<text x="${x + barW / 2}" y="${y0 - 4}" class="value" text-anchor="middle">n/a</text>`);
          return;
        }
        const opacity = barNames.length > 1 && b === 0 ? 0.55 : 1;
        out.push(
          `<rect x="${x + 1}" y="${y(value)}" width="${barW - 2}" height="${y0 - y(value)}" fill="${color}" fill-opacity="${opacity}"><title>${escapeXml(`${series[s]!.label} ${barNames[b] ?? ""} ${formatValue(value, options.unit)}`)}</title></rect>`,
        );
        out.push(
          `<text transform="translate(${x + barW / 2 + 3},${y(value) - 4}) rotate(-60)" class="value">${formatValue(value, options.unit)}</text>`,
        );
      });
    });
    out.push(
      `<text x="${x0 + g * groupW + groupW / 2}" y="${y0 + 22}" class="group" text-anchor="middle">${escapeXml(group.label)}</text>`,
    );
  });
  return out.join("\n");
}

function legend(top: number, series: Series[], note: string): string {
  const out = series.map((s, i) => {
    const x = MARGIN.left + i * 170;
    return `<rect x="${x}" y="${top}" width="14" height="14" fill="${s.color}"/><text x="${x + 20}" y="${top + 12}" class="legend">${escapeXml(s.label)}</text>`;
  });
  out.push(`<text x="${MARGIN.left}" y="${top + 34}" class="note">${escapeXml(note)}</text>`);
  return out.join("\n");
}

export function renderChart(results: BenchResults): string {
  const systems = results.scenarios.flatMap((s) => s.cells.map((c) => ({ name: c.system, label: c.label })));
  const unique = [...new Map(systems.map((s) => [s.name, s])).values()];
  const series = unique.map((s, i) => ({ label: s.label, color: COLORS[i % COLORS.length]! }));
  const median = (scenario: string, system: string, key: string) =>
    results.scenarios.find((s) => s.name === scenario)?.cells.find((c) => c.system === system)?.summary[key]
      ?.median ?? null;

  const fanout = results.scenarios.find((s) => s.name === "fanout-latency");
  const caseKeys = ["c200", "c1000", "c5000"];
  const latencyGroups: Group[] = fanout
    ? caseKeys.map((key) => ({
        label: caseLabel(
          fanout.metrics.find((m) => m.key === `${key}.p50`)?.label.replace(/ p50$/, "") ?? key,
        ),
        values: unique.map((s) => [
          median("fanout-latency", s.name, `${key}.p50`),
          median("fanout-latency", s.name, `${key}.p99`),
        ]),
      }))
    : [];
  const rateGroups: Group[] = [
    { scenario: "throughput", label: "throughput: 1 channel, as fast as acked" },
    { scenario: "many-weddings", label: "many weddings: many channels" },
  ]
    .filter((g) => results.scenarios.some((s) => s.name === g.scenario))
    .map((g) => ({ label: g.label, values: unique.map((s) => [median(g.scenario, s.name, "rate")]) }));

  const durable = results.scenarios.some((s) => s.name === "durable-broadcasts");
  const durableGroups: Group[] = durable
    ? INFLIGHT_LEVELS.map((n) => ({
        label: `${n} in flight`,
        values: unique.map((s) => [median("durable-broadcasts", s.name, `${levelKey(n)}.rate`)]),
      }))
    : [];
  const hop = results.scenarios.some((s) => s.name === "redis-hop");
  const hopGroups: Group[] = hop
    ? HOP_PATHS.map((path) => ({
        label: path.label,
        values: unique.map((s) => [
          median("redis-hop", s.name, `${path.key}.p50`),
          median("redis-hop", s.name, `${path.key}.p99`),
        ]),
      }))
    : [];

  const panels = [
    {
      title: "Fan-out delivery latency at 20k deliveries/s (lower is better)",
      yLabel: "milliseconds",
      unit: "ms" as const,
      groups: latencyGroups,
      barNames: ["p50", "p99"],
    },
    {
      title: "Deliveries per second while saturated (higher is better)",
      yLabel: "deliveries / s",
      unit: "per-s" as const,
      groups: rateGroups,
      barNames: [""],
    },
    {
      title: "Durable broadcasts on one channel: acknowledged per second (higher is better)",
      yLabel: "broadcasts / s",
      unit: "per-s" as const,
      groups: durableGroups,
      barNames: [""],
    },
    {
      title:
        "Redis hop: delivery latency, broadcasts into the subscribers' instance or another (lower is better)",
      yLabel: "milliseconds",
      unit: "ms" as const,
      groups: hopGroups,
      barNames: ["p50", "p99"],
    },
  ].filter((p) => p.groups.length);

  const runs = results.options.runs > 1 ? `median of ${results.options.runs} runs` : "1 run";
  const parts: string[] = [];
  parts.push(
    `<text x="${MARGIN.left}" y="28" class="heading">WedSync Channels bench ${escapeXml(results.startedAt)}${results.options.quick ? " (--quick)" : ""}: ${runs}</text>`,
  );
  parts.push(
    legend(
      44,
      series,
      "Latency panels: lighter bar = p50, darker bar = p99, from the scheduled send time. Linear scales.",
    ),
  );
  let top = 90;
  for (const spec of panels) {
    parts.push(panel({ top, series, ...spec }));
    top += PANEL_HEIGHT;
  }
  const height = top + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.heading{font-size:18px;font-weight:bold}.title{font-size:15px;font-weight:bold}.tick,.value{font-size:11px;fill:#333}
.group{font-size:13px}.legend{font-size:13px}.note{font-size:12px;fill:#555}.axis-label{font-size:12px}
.grid{stroke:#ddd}.axis{stroke:#333}
</style>
<rect width="100%" height="100%" fill="white"/>
${parts.join("\n")}
</svg>
`;
}
