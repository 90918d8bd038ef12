import { randomUUID } from "node:crypto";
import type { Bus, PresenceEntry } from "@wedsync/bus";

export interface PresenceEvent {
  type: "presence";
  action: "join" | "leave";
  channel: string;
  userId: string;
  at: Date;
}

export interface OnlineUser {
  userId: string;
  connections: number;
  since: Date;
}

type Watcher = (event: PresenceEvent) => void;

const topicOf = (channelId: string) => `pr:${channelId}`;

/** Entries per write of a refresh (see PresenceManager.refresh). */
export const REFRESH_BATCH = 250;

/**
 * Presence per channel across instances. A live `channel.events` stream is one presence entry;
 * this instance refreshes its entries every third of the TTL, so entries of a dead instance
 * expire, and a periodic sweep turns those expiries into leave events. Join and leave are per
 * user: a second device joining or leaving is not news.
 */
export class PresenceManager {
  private readonly local = new Map<string, Map<string, PresenceEntry>>();
  private readonly names = new Map<string, string>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  private timers: NodeJS.Timeout[] = [];
  /**
   * Client ids are this prefix (random per manager, so unique across instances) and a counter: a
   * randomUUID() per join stays in memory as a tree of some fifteen concatenated strings.
   */
  private readonly clientPrefix = `${randomUUID()}:`;
  private clientCount = 0;

  constructor(
    private readonly bus: Bus,
    private readonly instanceId: string,
    private readonly ttlMs: number,
    private readonly onError: (error: unknown) => void,
  ) {
    bus.onFrame((topic, frame) => {
      if (!topic.startsWith("pr:")) return;
      const event = JSON.parse(frame) as PresenceEvent;
      for (const watcher of this.watchers.get(topic) ?? []) watcher({ ...event, at: new Date(event.at) });
    });
  }

  start() {
    const every = (ms: number, run: () => Promise<void>) => {
      const timer = setInterval(() => void run().catch(this.onError), ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(Math.max(100, Math.floor(this.ttlMs / 3)), () => this.refresh());
    every(Math.max(100, Math.floor(this.ttlMs / 2)), () => this.sweep());
  }

  stop() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  /**
   * Marks a connection present in the channel; pass the result to `leave` when it leaves. Best
   * effort: with the bus down the entry is still kept here and published by the next refresh.
   */
  async join(channelId: string, channelName: string, userId: string): Promise<PresenceEntry> {
    const entry: PresenceEntry = {
      clientId: this.clientPrefix + (++this.clientCount).toString(36),
      userId,
      instanceId: this.instanceId,
      joinedAt: Date.now(),
    };
    const entries = this.local.get(channelId) ?? new Map<string, PresenceEntry>();
    this.local.set(channelId, entries);
    this.names.set(channelId, channelName);
    // Here before the round trip, so the channel's last other connection leaving meanwhile cannot
    // drop this map; a refresh publishing the entry first is fine (join ignores the entry's copy).
    entries.set(entry.clientId, entry);
    try {
      if (await this.bus.presence.join(channelId, entry, this.ttlMs))
        await this.announce(channelId, "join", userId);
    } catch (error) {
      this.onError(error);
    }
    return entry;
  }

  /** The connection that joined with `entry` left the channel. Best effort, as `join`. */
  async leave(channelId: string, entry: PresenceEntry) {
    // The entry kept its channel's map from being dropped since it joined (see join).
    const entries = this.local.get(channelId);
    entries?.delete(entry.clientId);
    if (entries?.size === 0) this.local.delete(channelId);
    try {
      if (await this.bus.presence.leave(channelId, entry.clientId))
        await this.announce(channelId, "leave", entry.userId);
    } catch (error) {
      this.onError(error);
    }
  }

  /** Users online in the channel on any instance, one row per user. */
  async list(channelId: string): Promise<OnlineUser[]> {
    const byUser = new Map<string, OnlineUser>();
    for (const entry of await this.bus.presence.list(channelId)) {
      const user = byUser.get(entry.userId);
      if (user) {
        user.connections++;
        if (entry.joinedAt < user.since.getTime()) user.since = new Date(entry.joinedAt);
      } else {
        byUser.set(entry.userId, { userId: entry.userId, connections: 1, since: new Date(entry.joinedAt) });
      }
    }
    return [...byUser.values()].sort((a, b) => a.since.getTime() - b.since.getTime());
  }

  /** Receives join/leave events of the channel until the returned function is called. */
  async watch(channelId: string, channelName: string, watcher: Watcher): Promise<() => void> {
    const topic = topicOf(channelId);
    this.names.set(channelId, channelName);
    const set = this.watchers.get(topic) ?? new Set<Watcher>();
    const first = set.size === 0;
    set.add(watcher);
    this.watchers.set(topic, set);
    if (first) await this.bus.subscribe(topic);
    return () => {
      set.delete(watcher);
      if (set.size > 0) return;
      this.watchers.delete(topic);
      this.bus.unsubscribe(topic).catch(this.onError);
    };
  }

  /** Announces that the user left, unless another of their connections is still in the channel. */
  private async leaveUnlessOnline(channelId: string, userId: string) {
    if (!(await this.bus.presence.userOnline(channelId, userId)))
      await this.announce(channelId, "leave", userId);
  }

  private async announce(channelId: string, action: PresenceEvent["action"], userId: string) {
    const topic = topicOf(channelId);
    // Nobody watching the channel on an in-process bus: the event would reach no one, so it is not
    // even made (in a connect storm, making it was the largest of the server's own costs per join).
    if (!this.bus.mayReach(topic)) return;
    const event: PresenceEvent = {
      type: "presence",
      action,
      channel: this.names.get(channelId) ?? "",
      userId,
      at: new Date(),
    };
    await this.bus.publish(topic, JSON.stringify(event));
  }

  /**
   * Writes this instance's entries again with new expiries, a batch at a time: each batch is built
   * and sent in one go and other work runs while it travels. All of them at once held the event loop
   * for 143 ms at 1,000 entries on Redis (a CPU profile of the bench's seed load, session 30). An
   * entry that left since the refresh began is left out: its leave went to the bus already, and
   * writing it again would bring it back until it expired.
   */
  private async refresh() {
    const entries = [...this.local].flatMap(([channelId, map]) =>
      [...map.values()].map((entry) => ({ channelId, entry })),
    );
    for (let start = 0; start < entries.length; start += REFRESH_BATCH) {
      const batch = entries
        .slice(start, start + REFRESH_BATCH)
        .filter(({ channelId, entry }) => this.local.get(channelId)?.get(entry.clientId) === entry);
      await this.bus.presence.upsert(batch, this.ttlMs);
    }
  }

  /** Expired entries (of dead instances) become leave events, for the channels watched here. */
  private async sweep() {
    for (const topic of this.watchers.keys()) {
      const channelId = topic.slice(3);
      const expired = await this.bus.presence.sweep(channelId);
      for (const userId of new Set(expired.map((entry) => entry.userId)))
        await this.leaveUnlessOnline(channelId, userId);
    }
  }
}
