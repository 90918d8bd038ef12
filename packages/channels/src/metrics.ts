import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** One registry per running instance (tests run several in one process). Names per DESIGN.md. */
export function createMetrics(sources: {
  liveChannels: () => number;
  queuedMessages: () => Promise<number>;
}) {
  const registry = new Registry();
  const of = { registers: [registry] };
  return {
    registry,
    connections: new Gauge({ name: "channels_connections", help: "Open WebSocket connections", ...of }),
    subscriptions: new Gauge({
      name: "channels_subscriptions",
      help: "Live channel.events streams on this instance",
      ...of,
    }),
    channels: new Gauge({
      name: "channels_channels",
      help: "Channels with a live local subscriber",
      collect() {
        this.set(sources.liveChannels());
      },
      ...of,
    }),
    broadcasts: new Counter({ name: "channels_broadcasts_total", help: "Durably stored broadcasts", ...of }),
    storeWait: new Histogram({
      name: "channels_broadcast_store_seconds",
      help: "Broadcast handed to the store -> durable: what its fan-out and acknowledgement wait for",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      ...of,
    }),
    vacuumTime: new Histogram({
      name: "channels_store_vacuum_seconds",
      help: "The embedded database's own vacuum and analyze after cleanup (it has no autovacuum), which hold the event loop",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ...of,
    }),
    vacuums: new Counter({
      name: "channels_store_vacuums_total",
      help: "Tables the embedded database's own vacuum processed",
      labelNames: ["table"],
      ...of,
    }),
    analyzes: new Counter({
      name: "channels_store_analyzes_total",
      help: "Tables the embedded database's own analyze gave new planner statistics",
      labelNames: ["table"],
      ...of,
    }),
    deliveries: new Counter({
      name: "channels_deliveries_total",
      help: "Messages handed to subscribers",
      ...of,
    }),
    liveWrites: new Counter({
      name: "channels_live_writes_total",
      help: "Deliveries written straight to the socket by a caught-up stream (part of channels_deliveries_total)",
      ...of,
    }),
    deliveryLatency: new Histogram({
      name: "channels_delivery_latency_seconds",
      help: "Broadcast stored -> handed to a live subscriber",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      ...of,
    }),
    slowConsumersDropped: new Counter({
      name: "channels_slow_consumers_dropped_total",
      help: "Subscribers disconnected because they could not keep up",
      ...of,
    }),
    resyncs: new Counter({
      name: "channels_resyncs_total",
      help: "Live streams that re-read the store after a lost or overflowed live queue",
      ...of,
    }),
    heartbeatTimeouts: new Counter({
      name: "channels_heartbeat_timeouts_total",
      help: "Connections terminated for not answering a ping in time",
      ...of,
    }),
    queueDepth: new Gauge({
      name: "channels_queue_depth",
      help: "Stored messages not yet expired, across the cluster (counted at each scrape)",
      async collect() {
        this.set(await sources.queuedMessages());
      },
      ...of,
    }),
    authFailures: new Counter({
      name: "channels_auth_failures_total",
      help: "Refused tokens and inbound webhook signatures",
      ...of,
    }),
    webhookDeliveries: new Counter({
      name: "channels_webhook_deliveries_total",
      help: "Outbound webhook attempts by outcome (delivered, failed, gave_up)",
      labelNames: ["outcome"] as const,
      ...of,
    }),
    rateLimited: new Counter({
      name: "channels_rate_limited_total",
      help: "Requests refused by a rate limit",
      ...of,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
