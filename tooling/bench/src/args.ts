import { SCENARIOS } from "./scenarios/index.ts";
import { SYSTEMS } from "./systems/index.ts";

export interface RunOptions {
  systems: string[];
  scenarios: string[];
  runs: number;
  quick: boolean;
  out: string;
}

/** The default run (about 15 minutes with one run): the baselines and WedSync's embedded default. */
export const DEFAULT_SYSTEMS = ["ws", "socketio", "wedsync"];
/** `--systems all`: every system except the variants (stock fan-out, base checkouts): name them to add them. */
export const ALL_SYSTEMS = ["ws", "socketio", "wedsync", "wedsync-prod", "socketio-3", "wedsync-prod-3"];
const DEFAULT_RUNS = 1;

export const USAGE = `pnpm bench [--systems a,b] [--scenarios a,b] [--runs N] [--quick] [--out DIR]

  --systems    ${Object.keys(SYSTEMS).join(", ")}, or all (= ${ALL_SYSTEMS.join(",")})
               (default: ${DEFAULT_SYSTEMS.join(",")}; ws is always added: ratios refer to it)
  --scenarios  ${SCENARIOS.map((s) => s.name).join(", ")} (default: all)
  --runs       runs per scenario and system; the table shows the median and min-max (default ${DEFAULT_RUNS};
               --runs 3 for medians: about three times as long)
  --quick      every scenario shrunk (1/5 of the connections, 2 s phases, 1 run) for a fast check
  --out        where results go (default: bench-results/ at the repository root)`;

function list(value: string | undefined, known: string[], what: string): string[] {
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = items.filter((i) => !known.includes(i));
  if (unknown.length) throw new Error(`unknown ${what}: ${unknown.join(", ")}\n\n${USAGE}`);
  return items;
}

export function parseArgs(argv: string[], defaultOut: string): RunOptions {
  const values = new Map<string, string>();
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") continue;
    if (arg === "--quick") quick = true;
    else if (arg === "--help" || arg === "-h") throw new Error(USAGE);
    else if (arg.startsWith("--")) {
      const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value\n\n${USAGE}`);
      values.set(name, value);
    } else throw new Error(`unexpected argument ${arg}\n\n${USAGE}`);
  }
  for (const name of values.keys())
    if (!["systems", "scenarios", "runs", "out"].includes(name))
      throw new Error(`unknown option --${name}\n\n${USAGE}`);
  const systems =
    values.get("systems") === "all"
      ? ALL_SYSTEMS
      : values.has("systems")
        ? list(values.get("systems"), Object.keys(SYSTEMS), "system")
        : DEFAULT_SYSTEMS;
  const scenarios = values.has("scenarios")
    ? list(
        values.get("scenarios"),
        SCENARIOS.map((s) => s.name),
        "scenario",
      )
    : SCENARIOS.map((s) => s.name);
  const runs = Number(values.get("runs") ?? DEFAULT_RUNS);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer\n\n${USAGE}`);
  return {
    systems: systems.includes("ws") ? systems : ["ws", ...systems],
    scenarios,
    runs,
    quick,
    out: values.get("out") ?? defaultOut,
  };
}
