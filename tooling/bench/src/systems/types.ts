/** The common shape of every system under test: a server side the bench starts, a client side workers use. */

/** Who a connection is: the WedSync adapter mints a token from this; the baselines ignore it. */
export interface BenchUser {
  id: string;
  /** Supplier ids whose channels this user may read and publish. */
  suppliers: string[];
}

export interface ClientConnection {
  /** Resolves when the server has confirmed the first subscription to `channel`. */
  subscribe(channel: string): Promise<void>;
  /** Called for every delivered message with the channel it says it belongs to. */
  onMessage(callback: (channel: string, text: string) => void): void;
  /**
   * Resolves when the server acknowledges the broadcast, with the seq it was stored at where the
   * system stores broadcasts (WedSync's `channel.broadcast` result); undefined for the baselines.
   */
  publish(channel: string, text: string): Promise<number | undefined>;
  close(): Promise<void>;
  /** Errors and stream resets seen so far (WedSync only reports resets). */
  problems(): { errors: number; resets: number };
}

/** What a worker needs to build clients for a system (sent over IPC, so plain data). */
export type ClientConfig = { kind: "ws" } | { kind: "socketio" } | { kind: "wedsync"; secret: string };

/** A channel's stored messages in seq order (the bench's text only), and the resets met on the way. */
export interface ChannelReplay {
  messages: Array<{ seq: number; text: string }>;
  resets: number;
}

export interface StartOptions {
  instances: number;
  postgres?: boolean;
  redis?: boolean;
  /** Extra server environment (WedSync variants). */
  env?: Record<string, string>;
  /** Another checkout of this repository whose server runs instead of this one's (WedSync only). */
  root?: string;
}

export interface RunningSystem {
  /** One base URL (http://127.0.0.1:port) per instance. */
  urls: string[];
  /** Server process ids, for RSS. */
  pids: number[];
  /** Each server's reserved inspector port (see inspector.ts), for a forced GC. */
  inspectorPorts: number[];
  clientConfig: ClientConfig;
  /** Creates channels that must exist before anyone subscribes (WedSync); a no-op for the baselines. */
  prepareChannels(names: string[]): Promise<void>;
  /** What a reader of the results should know about how this system was driven. */
  notes: string[];
  /** Every stored message of a channel, read back as a client would (WedSync: durable store). */
  replayChannel?(name: string, untilSeq: number): Promise<ChannelReplay>;
  /** Live subscriptions the server(s) report, where the system can tell. */
  liveSubscriptions?(): Promise<number>;
  /**
   * Broadcasts stored so far and the seconds they waited for the store, summed over the instances
   * (WedSync's channels_broadcast_store_seconds; a server without it reports none).
   */
  storeWait?(): Promise<{ broadcasts: number; seconds: number }>;
  stop(): Promise<void>;
}

export interface ServerAdapter {
  start(options: StartOptions): Promise<RunningSystem>;
}

export class SystemUnavailable extends Error {
  override name = "SystemUnavailable";
}
