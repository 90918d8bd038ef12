/**
 * A load-generator process (spawned pinned to the client core), driven by the bench over IPC:
 * opens subscriber connections, publishes, and reports what arrived. See worker-protocol.ts.
 */
import { runPublisher } from "./publisher.ts";
import { runSeedProbes } from "./seed-probes.ts";
import { SubscriberPool } from "./subscriber-pool.ts";
import type { ClientConfig } from "./systems/types.ts";
import type { WorkerReply, WorkerRequest } from "./worker-protocol.ts";

let config: ClientConfig | undefined;
let urls: string[] = [];
let pool: SubscriberPool | undefined;

function ready(): { config: ClientConfig; pool: SubscriberPool } {
  if (!config || !pool) throw new Error("worker not initialised");
  return { config, pool };
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case "init":
      config = request.config;
      urls = request.urls;
      pool = new SubscriberPool(config, urls);
      return null;
    case "connect":
      return ready().pool.connect(request.conns, request.concurrency);
    case "phase":
      return ready().pool.setPhase(request.phase, request.startedAt);
    case "progress":
      return ready().pool.progress();
    case "stats":
      return ready().pool.stats(request.tally);
    case "publish":
      return runPublisher(ready().config, urls, request.plan);
    case "seed-probes": {
      const current = ready().config;
      if (current.kind !== "wedsync") throw new Error("seed probes run against WedSync only");
      return runSeedProbes(current.secret, urls, request.plan);
    }
    case "close-all":
      return ready().pool.closeAll();
  }
}

process.on("message", (message: WorkerRequest & { id: number }) => {
  handle(message).then(
    (result) => process.send?.({ id: message.id, ok: true, result: result ?? null } satisfies WorkerReply),
    (error: Error) =>
      process.send?.({
        id: message.id,
        ok: false,
        error: error.stack ?? String(error),
      } satisfies WorkerReply),
  );
});
// The bench went away: nothing left to do.
process.on("disconnect", () => process.exit(0));
// An orderly exit, so that --cpu-prof (BENCH_WORKER_CPU_PROF_DIR) writes its profile.
process.on("SIGTERM", () => process.exit(0));
process.on("unhandledRejection", (error) => {
  console.error("[worker] unhandled rejection:", error);
});
