import type { IncomingMessage, ServerResponse } from "node:http";
import type { ChannelServices } from "@wedsync/channels";

interface OpsDeps {
  services: ChannelServices;
  ping: () => Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** Health, readiness and Prometheus metrics; everything else is a 404. */
export async function handleOpsRequest(req: IncomingMessage, res: ServerResponse, deps: OpsDeps) {
  const path = req.url?.split("?")[0];
  if (req.method !== "GET") return json(res, 405, { error: "method not allowed" });
  switch (path) {
    case "/healthz":
      return json(res, 200, { status: "ok", instanceId: deps.services.instanceId });
    case "/readyz": {
      try {
        await deps.ping();
        return json(res, 200, { status: "ready", database: "ok", bus: deps.services.bus.kind });
      } catch (error) {
        return json(res, 503, { status: "unavailable", database: (error as Error).message });
      }
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
