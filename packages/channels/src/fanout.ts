import { randomUUID } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Bus } from "@wedsync/bus";
import type { ChannelStore } from "@wedsync/db";
import { FanoutPasses } from "./fanout-passes.ts";
import type { FanoutListener } from "./inbox.ts";
import type { LiveWrites } from "./live-writes.ts";
import type { ChannelMessage } from "./message.ts";
import { decodeMessage, encodeMessage } from "./wire-format.ts";

type RevocationWatcher = Pick<FanoutListener, "userId" | "revoke">;

const TOPIC_PREFIX = "ch:";
const topicOf = (channelId: string) => `${TOPIC_PREFIX}${channelId}`;
/** Every instance listens to these for the whole of its life. */
const REVOCATIONS = "ctl:revocations";
const GONE = "ctl:gone";

const ignoreRelayFailure = () => {};

/**
 * How long a store read of a channel's head vouches for the channel: a stream that starts from the
 * head within this time of one, on a channel this instance kept listening to since, starts from
 * what it knows instead of reading the store again (see liveHead).
 */
export const HEAD_TRUST_MS = 1_000;

/** Channels whose heads the head check reads in one query (see reconcile). */
export const HEAD_CHECK_BATCH = 1_000;

/**
 * This instance's side of fan-out: one bus subscription per channel while at least one local
 * subscriber listens, each frame decoded once and handed to every local listener.
 *
 * A message published here goes to local listeners directly and to other instances through the
 * bus (frames carry their origin, so this instance ignores its own echo): with the bus down,
 * local subscribers still get live messages, and other instances catch up when it is back.
 */
export class LocalFanout {
  private readonly listeners = new Map<string, Set<FanoutListener>>();
  private readonly confirming = new Map<string, Promise<void>>();
  /** Topics whose bus subscription failed (bus down); retried when the bus reconnects. */
  private readonly unconfirmed = new Set<string>();
  private readonly origin = randomUUID();
  /** The highest seq seen live per topic, to compare against the store's heads. */
  private readonly seen = new Map<string, number>();
  /** Per topic listened to, the last head the store answered and when (ms since the epoch). */
  private readonly stored = new Map<string, { seq: number; at: number }>();
  /** Topics listened to whose channel was deleted: a read still in flight must not vouch for them. */
  private readonly gone = new Set<string>();
  /** Streams other than channel.events (presence) that must hear of revocations, per channel. */
  private readonly revocationWatchers = new Map<string, Set<RevocationWatcher>>();
  private readonly passes: FanoutPasses;

  constructor(
    private readonly bus: Bus,
    private readonly onError: (error: unknown) => void = () => {},
    /** Called after each local fan-out with what it wrote live (see LiveWrites). */
    onLiveWrites: (writes: LiveWrites, message: ChannelMessage) => void = () => {},
  ) {
    this.passes = new FanoutPasses((topic) => this.listeners.get(topic), onLiveWrites, onError);
    bus.onFrame((topic, frame) => this.dispatch(topic, frame));
    bus.onResync(() => {
      for (const topic of this.unconfirmed) if (this.listeners.has(topic)) this.subscribeTopic(topic);
      for (const set of this.listeners.values()) for (const listener of set) listener.resync();
    });
  }

  /** Subscribes the instance-wide control topic; call once before serving. */
  async start(): Promise<void> {
    await Promise.all([this.bus.subscribe(REVOCATIONS), this.bus.subscribe(GONE)]);
  }

  /** Tells every instance (this one directly, in case the bus is down) that `userId` lost its grant. */
  revoke(channelId: string, userId: string): Promise<void> {
    const frame = JSON.stringify({ channelId, userId });
    this.dispatchRevocation(frame);
    return this.bus.publish(REVOCATIONS, frame);
  }

  /**
   * Tells every instance (this one directly) that cleanup deleted these channels: a stream of one
   * must read the store to start (and so find out), whatever head it knew. A lost frame leaves the
   * other instances trusting a head for at most HEAD_TRUST_MS.
   */
  channelsGone(channelIds: readonly string[]): Promise<void> {
    const frame = JSON.stringify(channelIds);
    this.dispatchGone(frame);
    return this.bus.publish(GONE, frame);
  }

  /**
   * Hands the message to this instance's listeners and, through the bus, to the other instances'.
   * Resolves at once, or, while the channel's fan-out is FANOUT_BACKLOG deliveries behind, once every
   * local listener has it (see FanoutPasses). The bus's outcome is not waited for and its failure is
   * not reported: a frame the bus lost reaches the other instances' streams from the store (their
   * head checks find the gap).
   */
  publish(channelId: string, message: ChannelMessage): Promise<void> {
    const topic = topicOf(channelId);
    const json = encodeMessage(message);
    const delivered = this.deliverLocally(topic, message);
    this.bus.publish(topic, `${this.origin}|${json}`).catch(ignoreRelayFailure);
    return delivered ?? Promise.resolve();
  }

  /** Resolves once live messages for the channel reach the listener; `unlisten` stops them. */
  async listen(channelId: string, listener: FanoutListener): Promise<void> {
    const topic = topicOf(channelId);
    let set = this.listeners.get(topic);
    if (!set) {
      set = new Set();
      this.listeners.set(topic, set);
      this.subscribeTopic(topic);
    }
    set.add(listener);
    await this.confirming.get(topic);
  }

  /** Stops what `listen` started (no closure per listener: a stream lives as long as its socket). */
  unlisten(channelId: string, listener: FanoutListener) {
    const topic = topicOf(channelId);
    const set = this.listeners.get(topic);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(topic);
    this.unconfirmed.delete(topic);
    this.seen.delete(topic);
    this.stored.delete(topic);
    this.gone.delete(topic);
    this.bus.unsubscribe(topic).catch(() => {
      // A failed unsubscribe only leaves frames this instance ignores.
    });
  }

  /**
   * Where a stream of a channel this instance listens to may start instead of the store's head: the
   * head the store answered less than HEAD_TRUST_MS ago (`storedHead`, while the channel was listened
   * to here all along), or a later seq seen live since. Any head the channel really had at some
   * moment is a safe start: everything after it reaches the stream live, or from the store when a
   * live seq skips ahead. What only a read can tell is that the channel still exists (cleanup may
   * delete it); the trust window bounds how old that proof may be. Undefined: read the store.
   */
  liveHead(channelId: string, now = Date.now()): number | undefined {
    const topic = topicOf(channelId);
    const stored = this.stored.get(topic);
    if (stored === undefined || now - stored.at > HEAD_TRUST_MS) return undefined;
    return Math.max(stored.seq, this.seen.get(topic) ?? 0);
  }

  /** The store's head of a channel listened to here, read at `at` (see liveHead). */
  storedHead(channelId: string, seq: number, at: number) {
    const topic = topicOf(channelId);
    if (!this.listeners.has(topic) || this.gone.has(topic)) return;
    const known = this.stored.get(topic);
    if (known === undefined || known.at <= at)
      this.stored.set(topic, { seq: Math.max(seq, known?.seq ?? 0), at });
  }

  /** Calls `revoke` when `userId` loses a grant on the channel (on any instance); call the result to stop. */
  watchRevocations(channelId: string, userId: string, revoke: () => void): () => void {
    const watcher: RevocationWatcher = { userId, revoke };
    let set = this.revocationWatchers.get(channelId);
    if (!set) {
      set = new Set();
      this.revocationWatchers.set(channelId, set);
    }
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.revocationWatchers.get(channelId) === set)
        this.revocationWatchers.delete(channelId);
    };
  }

  /** Channels with at least one local listener, and how many listeners in all. */
  counts(): { channels: number; listeners: number } {
    let listeners = 0;
    for (const set of this.listeners.values()) listeners += set.size;
    return { channels: this.listeners.size, listeners };
  }

  /** Never rejects: with the bus down, local delivery goes on and the topic is retried on reconnect. */
  private subscribeTopic(topic: string) {
    const confirmed = this.bus
      .subscribe(topic)
      .then(
        () => void this.unconfirmed.delete(topic),
        (error) => {
          this.unconfirmed.add(topic);
          this.onError(error);
        },
      )
      .finally(() => this.confirming.delete(topic));
    this.confirming.set(topic, confirmed);
  }

  private dispatch(topic: string, frame: string) {
    if (topic === REVOCATIONS) return this.dispatchRevocation(frame);
    if (topic === GONE) return this.dispatchGone(frame);
    if (!this.listeners.has(topic)) return;
    const separator = frame.indexOf("|");
    if (frame.slice(0, separator) === this.origin) return;
    this.deliverLocally(topic, decodeMessage(frame.slice(separator + 1)));
  }

  private deliverLocally(topic: string, message: ChannelMessage) {
    if (message.seq > (this.seen.get(topic) ?? 0)) this.seen.set(topic, message.seq);
    return this.passes.deliver(topic, message);
  }

  /**
   * Compares the store's heads of the channels listened to here with what arrived live; a channel
   * whose head is ahead lost frames the bus never carried (an instance that stored a message and
   * died before it could publish it) and its listeners re-read the store. One query per
   * HEAD_CHECK_BATCH channels, with a turn of the event loop between: on PGlite a read holds the
   * server's only thread, 32-33 ms for 5,000 heads in one query (session 19's probe).
   */
  async reconcile(heads: ChannelStore["channelHeads"]) {
    const channelIds = [...this.listeners.keys()].map((topic) => topic.slice(TOPIC_PREFIX.length));
    for (let start = 0; start < channelIds.length; start += HEAD_CHECK_BATCH) {
      if (start > 0) await nextTurn();
      await this.reconcileBatch(channelIds.slice(start, start + HEAD_CHECK_BATCH), heads);
    }
  }

  private async reconcileBatch(channelIds: string[], heads: ChannelStore["channelHeads"]) {
    const at = Date.now();
    const rows = await heads(channelIds);
    // A channel missing from the answer is gone: new streams of it must find out from the store.
    const found = new Set(rows.map((row) => row.id));
    for (const id of channelIds) if (!found.has(id)) this.forgetHead(id);
    for (const { id, lastSeq } of rows) {
      this.storedHead(id, lastSeq, at);
      const topic = topicOf(id);
      if (lastSeq <= (this.seen.get(topic) ?? 0)) continue;
      this.seen.set(topic, lastSeq);
      for (const listener of this.listeners.get(topic) ?? []) listener.resync();
    }
  }

  private dispatchGone(frame: string) {
    for (const channelId of JSON.parse(frame) as string[]) this.forgetHead(channelId);
  }

  /**
   * The channel was deleted: no head vouches for it any more (ids are never reused), and its streams
   * end, since nothing will be published to this id again (a channel created again has a new one).
   */
  private forgetHead(channelId: string) {
    const topic = topicOf(channelId);
    this.stored.delete(topic);
    const listeners = this.listeners.get(topic);
    if (!listeners) return;
    this.gone.add(topic);
    for (const listener of listeners) listener.channelGone();
  }

  private dispatchRevocation(frame: string) {
    const { channelId, userId } = JSON.parse(frame) as { channelId: string; userId: string };
    const streams = [
      ...(this.listeners.get(topicOf(channelId)) ?? []),
      ...(this.revocationWatchers.get(channelId) ?? []),
    ];
    for (const stream of streams) if (stream.userId === userId) stream.revoke();
  }
}
