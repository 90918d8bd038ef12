/**
 * One scenario run's moving parts: the system's server(s), subscriber workers, a publisher worker,
 * and the steps scenarios are written in (connect, wait until live, publish, drain, collect).
 */
import { epochNowMs, sleep } from "./clock.ts";
import { processTicks } from "./noise.ts";
import { concatSamples } from "./stats.ts";
import type { SystemSpec } from "./systems/index.ts";
import type { RunningSystem } from "./systems/types.ts";
import { spawnWorker, type WorkerHandle } from "./worker-pool.ts";
import type {
  ConnectResult,
  ConnSpec,
  DeliveryStats,
  PublishPlan,
  PublishResult,
  SeedProbePlan,
  SeedProbeResult,
  SentTally,
} from "./worker-protocol.ts";

/** Connections one worker process holds at most before the rig adds a second. */
const CONNECTIONS_PER_WORKER = 2_500;
const MAX_SUBSCRIBER_WORKERS = 2;
const SETTLE_WINDOW_MS = 250;
const SETTLE_MAX_MS = 10_000;

export class Rig {
  private subscriberWorkers: WorkerHandle[] = [];
  private publisherWorker: WorkerHandle | undefined;
  private phaseCount = 0;

  private constructor(
    readonly spec: SystemSpec,
    readonly system: RunningSystem,
  ) {}

  /** Starts the server(s); the first subscriber worker and the publisher load meanwhile. */
  static async start(spec: SystemSpec): Promise<Rig> {
    const early = [spawnWorker("worker-0"), spawnWorker("publisher")];
    let system: RunningSystem;
    try {
      system = await spec.server.start(spec.options);
    } catch (error) {
      await Promise.allSettled(early.map((w) => w.stop()));
      throw error;
    }
    const rig = new Rig(spec, system);
    try {
      rig.subscriberWorkers.push(await rig.init(early[0]!));
      rig.publisherWorker = await rig.init(early[1]!);
    } catch (error) {
      await Promise.allSettled(early.map((w) => w.stop()));
      await rig.stop();
      throw error;
    }
    return rig;
  }

  get instances() {
    return this.system.urls.length;
  }

  /** The instance a connection goes to: round-robin. */
  urlFor(index: number) {
    return index % this.instances;
  }

  private async init(worker: WorkerHandle) {
    await worker.request({ type: "init", config: this.system.clientConfig, urls: this.system.urls }, 30_000);
    return worker;
  }

  /**
   * Makes sure enough subscriber workers run for `connections` (1, or 2 past 2,500); `connect` calls
   * it too, but a measured storm's wall time must not count a worker's start-up.
   */
  async ensureWorkers(connections: number) {
    const wanted = Math.min(
      MAX_SUBSCRIBER_WORKERS,
      Math.max(1, Math.ceil(connections / CONNECTIONS_PER_WORKER)),
    );
    while (this.subscriberWorkers.length < wanted) {
      this.subscriberWorkers.push(await this.init(spawnWorker(`worker-${this.subscriberWorkers.length}`)));
    }
  }

  async publisher(): Promise<WorkerHandle> {
    this.publisherWorker ??= await this.init(spawnWorker("publisher"));
    return this.publisherWorker;
  }

  /** Opens and subscribes `conns`, spread over the workers, `concurrency` at a time in all. */
  async connect(conns: ConnSpec[], concurrency: number): Promise<ConnectResult> {
    await this.ensureWorkers(conns.length);
    const workers = this.subscriberWorkers;
    const shares = workers.map((_, w) => conns.filter((_, i) => i % workers.length === w));
    const perWorker = Math.max(1, Math.ceil(concurrency / workers.length));
    const timeoutMs = 120_000 + conns.length * 20;
    const results = await Promise.all(
      workers.map((worker, w) =>
        worker.request<ConnectResult>(
          { type: "connect", conns: shares[w]!, concurrency: perWorker },
          timeoutMs,
        ),
      ),
    );
    return {
      times: Float32Array.from(concatSamples(results.map((r) => r.times))),
      failures: results.reduce((n, r) => n + r.failures, 0),
      cpuMs: results.reduce((ms, r) => ms + r.cpuMs, 0),
      ...(results.find((r) => r.firstError)
        ? { firstError: results.find((r) => r.firstError)!.firstError! }
        : {}),
    };
  }

  /**
   * Waits until the server(s) report `expected` live subscriptions, where the system can tell
   * (WedSync's tRPC "started" comes before its stream is attached); elsewhere a subscription ack is live.
   */
  async waitLive(expected: number, timeoutMs = 30_000): Promise<boolean> {
    if (!this.system.liveSubscriptions) return true;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.system.liveSubscriptions()) >= expected) return true;
      await sleep(100);
    }
    return false;
  }

  /** Starts a new measurement on every subscriber worker; returns its name. */
  async newPhase(label: string): Promise<{ phase: string; startedAt: number }> {
    const phase = `${label}${++this.phaseCount}`;
    const startedAt = epochNowMs();
    await Promise.all(
      this.subscriberWorkers.map((w) => w.request({ type: "phase", phase, startedAt }, 30_000)),
    );
    return { phase, startedAt };
  }

  async publish(plan: PublishPlan): Promise<PublishResult> {
    const worker = await this.publisher();
    return worker.request<PublishResult>({ type: "publish", plan }, plan.durationMs + 120_000);
  }

  async seedProbes(plan: SeedProbePlan): Promise<SeedProbeResult> {
    const worker = await this.publisher();
    return worker.request<SeedProbeResult>({ type: "seed-probes", plan }, plan.durationMs + 120_000);
  }

  async deliveries(): Promise<number> {
    const progress = await Promise.all(
      this.subscriberWorkers.map((w) => w.request<{ deliveries: number }>({ type: "progress" }, 30_000)),
    );
    return progress.reduce((n, p) => n + p.deliveries, 0);
  }

  /**
   * Waits until nothing arrives for `quietMs` (300 ms once `expected` deliveries are in: broadcasts
   * whose ack timed out may still be coming, and the next measurement must not get them), or `maxMs`.
   */
  async drain(expected: number, maxMs: number, quietMs = 1_500): Promise<void> {
    const deadline = Date.now() + maxMs;
    let last = -1;
    let lastChange = Date.now();
    while (Date.now() < deadline) {
      const now = await this.deliveries();
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > (now >= expected ? 300 : quietMs)) return;
      await sleep(100);
    }
  }

  /** What every subscriber received in the current phase, merged over workers. */
  async stats(tally: SentTally): Promise<DeliveryStats> {
    const parts = await Promise.all(
      this.subscriberWorkers.map((w) => w.request<DeliveryStats>({ type: "stats", tally }, 60_000)),
    );
    const timeline: number[] = [];
    for (const part of parts) {
      part.timeline.forEach((n, i) => {
        timeline[i] = (timeline[i] ?? 0) + n;
      });
    }
    const sum = (key: keyof DeliveryStats) => parts.reduce((n, p) => n + (p[key] as number), 0);
    return {
      deliveries: sum("deliveries"),
      duplicates: sum("duplicates"),
      misdeliveries: sum("misdeliveries"),
      stale: sum("stale"),
      missing: sum("missing"),
      expected: sum("expected"),
      errors: sum("errors"),
      resets: sum("resets"),
      latencies: Float32Array.from(concatSamples(parts.map((p) => p.latencies))),
      timeline: Array.from(timeline, (n) => n ?? 0),
    };
  }

  /** CPU ticks so far of the server(s) and of the load generators (workers). */
  cpuTicks(): { at: number; server: number; clients: number } {
    const workers = [...this.subscriberWorkers, ...(this.publisherWorker ? [this.publisherWorker] : [])];
    const sum = (pids: Array<number | undefined>) =>
      pids.reduce((n: number, pid) => n + (pid ? processTicks(pid) : 0), 0);
    return { at: Date.now(), server: sum(this.system.pids), clients: sum(workers.map((w) => w.pid)) };
  }

  /**
   * Waits until the server(s) are idle (at most one clock tick of CPU in SETTLE_WINDOW_MS), so that
   * work left from an earlier phase (closing a thousand connections goes on after the clients see
   * them closed) is not measured as the next phase's. Gives up after SETTLE_MAX_MS.
   */
  async settle(): Promise<void> {
    const started = Date.now();
    let last = this.cpuTicks().server;
    while (Date.now() - started < SETTLE_MAX_MS) {
      await sleep(SETTLE_WINDOW_MS);
      const now = this.cpuTicks().server;
      if (now - last <= 1) break;
      last = now;
    }
  }

  async closeConnections() {
    await Promise.all(this.subscriberWorkers.map((w) => w.request({ type: "close-all" }, 60_000)));
  }

  async stop() {
    const workers = [...this.subscriberWorkers, ...(this.publisherWorker ? [this.publisherWorker] : [])];
    this.subscriberWorkers = [];
    this.publisherWorker = undefined;
    await Promise.allSettled(workers.map((w) => w.stop()));
    await this.system.stop();
  }
}
