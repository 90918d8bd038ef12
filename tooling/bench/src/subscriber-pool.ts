/**
 * A worker's subscriber connections and what they received: per connection and channel a SeqTracker,
 * one latency sample per first delivery, and counts of duplicates, misdeliveries and stragglers.
 */
import { epochNowMs, withTimeout } from "./clock.ts";
import { readText } from "./message-text.ts";
import { SeqTracker } from "./seq-tracker.ts";
import { SampleBuffer } from "./stats.ts";
import { connectClient, credentialFor } from "./systems/index.ts";
import type { ClientConfig, ClientConnection } from "./systems/types.ts";
import {
  type ConnectResult,
  type ConnSpec,
  type DeliveryStats,
  type SentTally,
  TIMELINE_BUCKET_MS,
} from "./worker-protocol.ts";

const CONNECT_TIMEOUT_MS = 60_000;

interface Subscriber {
  connection: ClientConnection;
  channel: string;
  tracker: SeqTracker;
}

export class SubscriberPool {
  private subscribers: Subscriber[] = [];
  private phase = "";
  private phaseStart = 0;
  private latencies = new SampleBuffer();
  private timeline: number[] = [];
  private deliveries = 0;
  private duplicates = 0;
  private misdeliveries = 0;
  private stale = 0;

  constructor(
    private readonly config: ClientConfig,
    private readonly urls: string[],
  ) {}

  async connect(conns: ConnSpec[], concurrency: number): Promise<ConnectResult> {
    const times = new SampleBuffer();
    let failures = 0;
    let firstError: string | undefined;
    const credentials = await Promise.all(conns.map((spec) => credentialFor(this.config, spec.user)));
    const cpuBefore = process.cpuUsage();
    let next = 0;
    const lane = async () => {
      while (next < conns.length) {
        const index = next++;
        const spec = conns[index]!;
        const started = epochNowMs();
        try {
          const subscriber = await withTimeout(
            this.open(spec, credentials[index]),
            CONNECT_TIMEOUT_MS,
            "connect + subscribe",
          );
          times.push(epochNowMs() - started);
          this.subscribers.push(subscriber);
        } catch (error) {
          failures++;
          firstError ??= (error as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
    const cpu = process.cpuUsage(cpuBefore);
    return {
      times: times.toArray(),
      failures,
      cpuMs: (cpu.user + cpu.system) / 1000,
      ...(firstError ? { firstError } : {}),
    };
  }

  private async open(spec: ConnSpec, credential: string | undefined): Promise<Subscriber> {
    const connection = await connectClient(this.config, this.urls[spec.url]!, spec.user, credential);
    const subscriber: Subscriber = { connection, channel: spec.channel, tracker: new SeqTracker() };
    connection.onMessage((channel, text) => this.receive(subscriber, channel, text));
    try {
      await connection.subscribe(spec.channel);
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
    return subscriber;
  }

  private receive(subscriber: Subscriber, channel: string, text: string) {
    const now = epochNowMs();
    const marked = readText(text);
    if (!marked || marked.phase !== this.phase) {
      this.stale++;
      return;
    }
    if (channel !== subscriber.channel || marked.channel !== subscriber.channel) {
      this.misdeliveries++;
      return;
    }
    if (!subscriber.tracker.add(marked.seq)) {
      this.duplicates++;
      return;
    }
    this.deliveries++;
    this.latencies.push(Math.max(0, now - marked.scheduledMs));
    const bucket = Math.floor((now - this.phaseStart) / TIMELINE_BUCKET_MS);
    if (bucket >= 0) this.timeline[bucket] = (this.timeline[bucket] ?? 0) + 1;
  }

  /** Starts a measurement: counts, samples and seq trackers start over. */
  setPhase(phase: string, startedAt: number) {
    this.phase = phase;
    this.phaseStart = startedAt;
    this.latencies.clear();
    this.timeline = [];
    this.deliveries = this.duplicates = this.misdeliveries = this.stale = 0;
    for (const subscriber of this.subscribers) subscriber.tracker = new SeqTracker();
  }

  progress() {
    return { deliveries: this.deliveries, connections: this.subscribers.length };
  }

  stats(tally: SentTally): DeliveryStats {
    const failed = new Map(Object.entries(tally.failed).map(([ch, seqs]) => [ch, new Set(seqs)]));
    let missing = 0;
    let expected = 0;
    let errors = 0;
    let resets = 0;
    for (const subscriber of this.subscribers) {
      const sent = tally.sent[subscriber.channel] ?? 0;
      const failedSeqs = failed.get(subscriber.channel) ?? new Set<number>();
      expected += sent - failedSeqs.size;
      missing += subscriber.tracker.missing(sent, failedSeqs);
      const problems = subscriber.connection.problems();
      errors += problems.errors;
      resets += problems.resets;
    }
    return {
      deliveries: this.deliveries,
      duplicates: this.duplicates,
      misdeliveries: this.misdeliveries,
      stale: this.stale,
      missing,
      expected,
      latencies: this.latencies.toArray(),
      timeline: Array.from(this.timeline, (n) => n ?? 0),
      errors,
      resets,
    };
  }

  async closeAll(): Promise<number> {
    const closing = this.subscribers;
    this.subscribers = [];
    await Promise.allSettled(closing.map((s) => withTimeout(s.connection.close(), 10_000, "close")));
    return closing.length;
  }
}
