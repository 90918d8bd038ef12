import { randomUUID } from "node:crypto";
import type { Bus } from "@wedsync/bus";
import { type ChannelStores, SERVICE_ACTOR } from "@wedsync/db";
import { AuditTrail } from "./audit.ts";
import { ChannelManager } from "./channel-manager.ts";
import type { Config } from "./config.ts";
import { LocalFanout } from "./fanout.ts";
import { Inflight } from "./inflight.ts";
import { MessageQueue } from "./message-queue.ts";
import { createMetrics } from "./metrics.ts";
import { PresenceManager } from "./presence-manager.ts";
import { createRateLimits } from "./rate-limits.ts";
import { ClusterStats } from "./stats.ts";
import { type HostResolver, WebhookTargets } from "./webhook-url.ts";

export interface ServiceDeps {
  config: Config;
  stores: ChannelStores;
  bus: Bus;
  instanceId?: string;
  onBackgroundError?: (error: unknown) => void;
  /** Name resolution for outbound webhook targets (tests: a DNS they control); the system's by default. */
  resolveHost?: HostResolver;
}

/** Everything one instance runs with; the router reaches it through the tRPC context. */
export function createChannelServices(deps: ServiceDeps) {
  const instanceId = deps.instanceId ?? deps.config.CHANNELS_INSTANCE_ID ?? `i-${randomUUID().slice(0, 8)}`;
  const fanout = new LocalFanout(
    deps.bus,
    (error) => deps.onBackgroundError?.(error),
    (writes, message) => writes.account(metrics, message.sentAt.getTime()),
  );
  /** For the instance's own jobs (audit writer, cleanup, webhook delivery, head checks, cluster counts). */
  const serviceStore = deps.stores.as(SERVICE_ACTOR);
  const metrics = createMetrics({
    liveChannels: () => fanout.counts().channels,
    queuedMessages: () => serviceStore.queuedMessages(new Date()),
  });
  const queue = new MessageQueue(deps.config.CHANNELS_RETENTION);
  const audit = new AuditTrail(serviceStore, instanceId, undefined, deps.onBackgroundError);
  const presence = new PresenceManager(deps.bus, instanceId, deps.config.CHANNELS_PRESENCE_TTL_MS, (error) =>
    deps.onBackgroundError?.(error),
  );
  const limits = createRateLimits(deps.bus, deps.config);
  const webhookTargets = new WebhookTargets(deps.config, deps.resolveHost);
  const manager = new ChannelManager({
    stores: deps.stores,
    serviceStore,
    queue,
    fanout,
    metrics,
    audit,
    presence,
    limits,
    webhookTargets,
    config: deps.config,
  });
  const stats = new ClusterStats(
    { bus: deps.bus, store: serviceStore, fanout, metrics, instanceId },
    deps.config.CHANNELS_STATS_INTERVAL_MS,
    (error) => deps.onBackgroundError?.(error),
  );
  return {
    stats,
    instanceId,
    startedAt: new Date(),
    config: deps.config,
    stores: deps.stores,
    serviceStore,
    bus: deps.bus,
    metrics,
    fanout,
    queue,
    audit,
    manager,
    presence,
    webhookTargets,
    inflight: new Inflight(),
  };
}

export type ChannelServices = ReturnType<typeof createChannelServices>;
