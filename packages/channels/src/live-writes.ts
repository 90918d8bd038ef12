import type { Metrics } from "./metrics.ts";

/**
 * What one broadcast's fan-out wrote straight to sockets, accounted once its loop is done.
 *
 * prom-client allocates on every `inc` and `observe` (label objects, a closure per observation): done
 * per write inside the loop, that was ~1.2 µs of server CPU per delivery (probe, 1,000 subscribers),
 * which every subscriber later in the loop waited for. Each write's time is kept, so the latency
 * histogram still gets one observation per delivery, with the moment that delivery was written.
 */
export class LiveWrites {
  private readonly writtenAt: number[] = [];

  wrote(now: number) {
    this.writtenAt.push(now);
  }

  /** Counts the writes as deliveries and observes each one's latency from `sentAtMs`. */
  account(metrics: Metrics, sentAtMs: number) {
    const { writtenAt } = this;
    if (writtenAt.length === 0) return;
    metrics.deliveries.inc(writtenAt.length);
    metrics.liveWrites.inc(writtenAt.length);
    for (const at of writtenAt) metrics.deliveryLatency.observe((at - sentAtMs) / 1000);
  }
}
