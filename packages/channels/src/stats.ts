import type { Bus } from "@wedsync/bus";
import type { ChannelStore, StoreCounts } from "@wedsync/db";
import type { LocalFanout } from "./fanout.ts";
import type { Metrics } from "./metrics.ts";

const TOPIC = "ctl:stats";

/**
 * How long a reading of the store's counts serves every snapshot. Counting channels and active
 * subscriptions reads every row: 574-766 ms of PGlite, the event loop held, with 100,000 channels and
 * 1,000,000 active subscriptions (probe). Each admin.onStats subscriber takes a snapshot every
 * interval (250 ms at the least), so without this the load grew with every open dashboard.
 */
export const STORE_COUNTS_MS = 2_000;

async function metricValue(metric: { get(): Promise<{ values: Array<{ value: number }> }> }) {
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

export interface InstanceFigures {
  instanceId: string;
  startedAt: string;
  bus: string;
  connections: number;
  liveStreams: number;
  liveChannels: number;
  broadcastsTotal: number;
  deliveriesTotal: number;
  reportedAt: string;
}

/**
 * Every instance publishes its own figures on the bus every few seconds and keeps the latest
 * figures of the others, so admin.stats on any instance shows the whole cluster. An instance not
 * heard from for three intervals (stopped, killed) drops out of the sum.
 */
export class ClusterStats {
  private readonly peers = new Map<string, InstanceFigures>();
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date();
  /** The last reading of the store's counts, while it may still serve (see STORE_COUNTS_MS). */
  private storeCounts: { readAt: number; counts: Promise<StoreCounts> } | undefined;

  constructor(
    private readonly deps: {
      bus: Bus;
      store: ChannelStore;
      fanout: LocalFanout;
      metrics: Metrics;
      instanceId: string;
    },
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {
    deps.bus.onFrame((topic, frame) => {
      if (topic !== TOPIC) return;
      const figures = JSON.parse(frame) as InstanceFigures;
      this.peers.set(figures.instanceId, figures);
    });
  }

  async start() {
    await this.deps.bus.subscribe(TOPIC);
    const publish = async () => {
      const figures = await this.local();
      this.peers.set(figures.instanceId, figures);
      await this.deps.bus.publish(TOPIC, JSON.stringify(figures));
    };
    await publish().catch(this.onError);
    this.timer = setInterval(() => void publish().catch(this.onError), this.intervalMs);
    this.timer.unref();
  }

  stop() {
    clearInterval(this.timer);
  }

  /** This instance's figures right now. */
  async local(): Promise<InstanceFigures> {
    const { metrics, fanout, bus, instanceId } = this.deps;
    const counts = fanout.counts();
    return {
      instanceId,
      startedAt: this.startedAt.toISOString(),
      bus: bus.kind,
      connections: await metricValue(metrics.connections),
      liveStreams: counts.listeners,
      liveChannels: counts.channels,
      broadcastsTotal: await metricValue(metrics.broadcasts),
      deliveriesTotal: await metricValue(metrics.deliveries),
      reportedAt: new Date().toISOString(),
    };
  }

  /** The store's counts, read at most once per STORE_COUNTS_MS whoever asks; a failed read is not kept. */
  private counts(): Promise<StoreCounts> {
    const now = Date.now();
    const known = this.storeCounts;
    if (known !== undefined && now - known.readAt < STORE_COUNTS_MS) return known.counts;
    const reading = { readAt: now, counts: this.deps.store.counts(new Date(now)) };
    this.storeCounts = reading;
    reading.counts.catch(() => {
      if (this.storeCounts === reading) this.storeCounts = undefined;
    });
    return reading.counts;
  }

  /** The cluster: each live instance's figures, their sum, and the shared store's counts. */
  async snapshot() {
    const here = await this.local();
    this.peers.set(here.instanceId, here);
    const freshAfter = Date.now() - this.intervalMs * 3;
    for (const [id, figures] of this.peers)
      if (Date.parse(figures.reportedAt) < freshAfter) this.peers.delete(id);
    const instances = [...this.peers.values()].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    const sum = (
      key: keyof Pick<InstanceFigures, "connections" | "liveStreams" | "broadcastsTotal" | "deliveriesTotal">,
    ) => instances.reduce((total, figures) => total + figures[key], 0);
    const stored = await this.counts();
    return {
      instanceId: here.instanceId,
      instance: here,
      instances,
      cluster: {
        instances: instances.length,
        connections: sum("connections"),
        liveStreams: sum("liveStreams"),
        broadcastsTotal: sum("broadcastsTotal"),
        deliveriesTotal: sum("deliveriesTotal"),
      },
      channels: stored.channels,
      activeSubscriptions: stored.activeSubscriptions,
      queueDepth: stored.queuedMessages,
    };
  }
}

export type ClusterSnapshot = Awaited<ReturnType<ClusterStats["snapshot"]>>;
