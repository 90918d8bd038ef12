/** The IPC messages between the bench (cli) and its load-generator workers. */
import type { BenchUser, ClientConfig } from "./systems/types.ts";

export interface ConnSpec {
  user: BenchUser;
  channel: string;
  /** Index into the system's instance URLs. */
  url: number;
}

export interface ConnectResult {
  /** Connect + first subscription confirmed, ms, one per connection that made it. */
  times: Float32Array;
  failures: number;
  firstError?: string;
  /**
   * CPU the load generator used (all its threads, ms) from the first connect on: the credentials the
   * connects use are made before, as a client arrives with its token.
   */
  cpuMs: number;
}

/** Per-channel acknowledged publishes: seqs 1..sent, minus `failed`. */
export interface SentTally {
  sent: Record<string, number>;
  failed: Record<string, number[]>;
}

export interface DeliveryStats {
  deliveries: number;
  duplicates: number;
  misdeliveries: number;
  /** Messages of an earlier phase (warm-up stragglers), ignored. */
  stale: number;
  missing: number;
  expected: number;
  latencies: Float32Array;
  /** Deliveries per TIMELINE_BUCKET_MS since the phase's start. */
  timeline: number[];
  errors: number;
  resets: number;
}

export const TIMELINE_BUCKET_MS = 100;

export interface PublishPlan {
  phase: string;
  user: BenchUser;
  channels: string[];
  /** Instance URL indexes to publish to, one picked at random per broadcast. */
  urls: number[];
  /** Publisher connections, spread round-robin over `urls` (default: one per URL). */
  connections?: number;
  durationMs: number;
  /** open: one broadcast every intervalMs (round-robin over channels), stamped with its scheduled time. */
  mode: "open" | "closed";
  intervalMs?: number;
  /** closed: broadcasts in flight at once. */
  inflight?: number;
  /** closed: at most this many broadcasts ahead of the probe subscriber (on channels[0]). */
  window?: number;
}

export interface PublishResult extends SentTally {
  published: number;
  startedAt: number;
  endedAt: number;
  /** Ack latency from the actual send, ms. */
  acks: Float32Array;
  /**
   * Per channel, the seq each acknowledged broadcast was stored at (index = the bench's seq - 1),
   * 0 where none was returned (a failed broadcast, or a system that does not store them).
   */
  storedSeqs: Record<string, number[]>;
  /** open loop: how late the publisher's timer fired at worst, ms. */
  maxLagMs: number;
  errors: number;
  firstError?: string;
}

/** The seed's own targets: operations run at a steady rate beside the load (WedSync only). */
export interface SeedProbePlan {
  /** Starts the probes' user ids and new channels' ids: a warm-up's probes never meet the measured ones. */
  prefix: string;
  durationMs: number;
  everyMs: number;
  supplier: string;
  /** An existing channel of that supplier, for connect + subscribe probes. */
  channel: string;
  urls: number[];
}

export interface SeedProbeResult {
  create: Float32Array;
  subscribe: Float32Array;
  connect: Float32Array;
  errors: number;
  firstError?: string;
}

export type WorkerRequest =
  | { type: "init"; config: ClientConfig; urls: string[] }
  | { type: "connect"; conns: ConnSpec[]; concurrency: number }
  | { type: "phase"; phase: string; startedAt: number }
  | { type: "progress" }
  | { type: "stats"; tally: SentTally }
  | { type: "publish"; plan: PublishPlan }
  | { type: "seed-probes"; plan: SeedProbePlan }
  | { type: "close-all" };

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string };
