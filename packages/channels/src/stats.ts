import type { ChannelServices } from "./services.ts";

async function counterValue(metric: { get(): Promise<{ values: Array<{ value: number }> }> }) {
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** A snapshot of this instance for admin.stats: metadata and figures, never payloads. */
export async function instanceStats(services: ChannelServices) {
  const { metrics, store, fanout, bus } = services;
  const stored = await store.counts(new Date());
  const local = fanout.counts();
  return {
    instanceId: services.instanceId,
    startedAt: services.startedAt,
    uptimeSeconds: Math.round((Date.now() - services.startedAt.getTime()) / 1000),
    bus: bus.kind,
    connections: await counterValue(metrics.connections),
    liveStreams: local.listeners,
    liveChannels: local.channels,
    channels: stored.channels,
    activeSubscriptions: stored.activeSubscriptions,
    queueDepth: stored.queuedMessages,
    broadcastsTotal: await counterValue(metrics.broadcasts),
    deliveriesTotal: await counterValue(metrics.deliveries),
  };
}

export type InstanceStats = Awaited<ReturnType<typeof instanceStats>>;
