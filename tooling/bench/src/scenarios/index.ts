import { connectStorm } from "./connect-storm.ts";
import { durableBroadcasts } from "./durable-broadcasts.ts";
import { fanoutLatency } from "./fanout-latency.ts";
import { idleMemory } from "./idle-memory.ts";
import { manyWeddings } from "./many-weddings.ts";
import { redisHop } from "./redis-hop.ts";
import { seedTargets } from "./seed-targets.ts";
import { throughput } from "./throughput.ts";
import type { Scenario } from "./types.ts";

/** In the order they run and are reported. */
export const SCENARIOS: Scenario[] = [
  connectStorm,
  fanoutLatency,
  throughput,
  manyWeddings,
  idleMemory,
  seedTargets,
  durableBroadcasts,
  redisHop,
];
