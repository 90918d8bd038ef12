import type { IncomingMessage, ServerResponse } from "node:http";
import type { ChannelServices } from "@wedsync/channels";
import { Gauge } from "prom-client";

export interface HealthProbes {
  database: () => Promise<void>;
  bus: () => Promise<void>;
}

interface OpsDeps {
  services: ChannelServices;
  health: HealthProbes;
  /** True once shutdown began: readiness fails so the load balancer stops routing here. */
  draining: () => boolean;
}

const PROBE_TIMEOUT_MS = 2_000;

async function probe(check: () => Promise<void>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return "ok";
  } catch (error) {
    return (error as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** Reports each dependency as 1 (up) or 0 (down) on every scrape of /metrics. */
export function registerDependencyGauge(services: ChannelServices, health: HealthProbes) {
  new Gauge({
    name: "channels_dependency_up",
    help: "1 when the dependency answered its probe, 0 when not",
    labelNames: ["dependency"],
    registers: [services.metrics.registry],
    async collect() {
      const [database, bus] = await Promise.all([probe(health.database), probe(health.bus)]);
      this.set({ dependency: "database" }, database === "ok" ? 1 : 0);
      this.set({ dependency: "bus" }, bus === "ok" ? 1 : 0);
    },
  });
}

/** Health, readiness and Prometheus metrics; everything else is a 404. */
export async function handleOpsRequest(req: IncomingMessage, res: ServerResponse, deps: OpsDeps) {
  const path = req.url?.split("?")[0];
  if (req.method !== "GET") return json(res, 405, { error: "method not allowed" });
  switch (path) {
    case "/healthz":
      return json(res, 200, { status: "ok", instanceId: deps.services.instanceId });
    case "/readyz": {
      if (deps.draining()) return json(res, 503, { status: "draining" });
      // Without the database nothing can be acknowledged; without the bus, broadcasts are still
      // stored and delivered locally, and other instances catch up once it is back: degraded.
      const [database, bus] = await Promise.all([probe(deps.health.database), probe(deps.health.bus)]);
      const status = database !== "ok" ? "unavailable" : bus !== "ok" ? "degraded" : "ready";
      return json(res, database === "ok" ? 200 : 503, {
        status,
        database,
        bus,
        busKind: deps.services.bus.kind,
      });
    }
    case "/metrics": {
      const { registry } = deps.services.metrics;
      res.writeHead(200, { "content-type": registry.contentType }).end(await registry.metrics());
      return;
    }
    default:
      return json(res, 404, { error: "not found" });
  }
}
