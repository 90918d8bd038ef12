/** One connection's presence in one channel. */
export interface PresenceEntry {
  /** Unique per connection and channel (a user with two devices has two); its userId never changes. */
  clientId: string;
  userId: string;
  instanceId: string;
  joinedAt: number;
}

/**
 * Who is connected to which channel, across instances. Entries carry a TTL that their instance
 * keeps refreshing; when an instance dies its entries expire instead of haunting the channel.
 */
export interface PresenceStore {
  /** Adds or refreshes entries (one round trip for many). */
  upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number): Promise<void>;
  /**
   * Adds or refreshes one entry as upsert does; true iff its user had no other live entry in the
   * channel (a join to announce). The entry's own earlier copy does not count, so a refresh that
   * overtook the join cannot hide it. Atomic: of concurrent joins of one user exactly one gets true.
   */
  join(channelId: string, entry: PresenceEntry, ttlMs: number): Promise<boolean>;
  /**
   * Removes the entry; true iff its user has no live entry left in the channel (a leave to
   * announce), false for an unknown entry. Atomic: of concurrent leaves exactly one gets true.
   */
  leave(channelId: string, clientId: string): Promise<boolean>;
  /** Live entries of a channel (expired ones are never returned). */
  list(channelId: string): Promise<PresenceEntry[]>;
  /** Whether the user has a live entry in the channel; costs that user's entries, not the channel's. */
  userOnline(channelId: string, userId: string): Promise<boolean>;
  /** Removes expired entries and returns them; each expired entry is returned to one caller only. */
  sweep(channelId: string): Promise<PresenceEntry[]>;
}

interface MemoryChannel {
  entries: Map<string, { entry: PresenceEntry; expiresAt: number }>;
  /**
   * userId -> clientIds, so join, leave and userOnline look at one user's entries, not the channel's.
   * An array: a user has one or a few connections in a channel, and a one-entry Set costs ~0.1 KiB
   * more per connection.
   */
  clientsByUser: Map<string, string[]>;
}

/** In-process presence for the embedded default. */
export class MemoryPresence implements PresenceStore {
  private readonly channels = new Map<string, MemoryChannel>();

  async upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number) {
    const expiresAt = Date.now() + ttlMs;
    for (const { channelId, entry } of entries) this.add(channelId, entry, expiresAt);
  }

  async join(channelId: string, entry: PresenceEntry, ttlMs: number) {
    const now = Date.now();
    const wasOnline = this.online(this.channels.get(channelId), entry.userId, now, entry.clientId);
    this.add(channelId, entry, now + ttlMs);
    return !wasOnline;
  }

  async leave(channelId: string, clientId: string) {
    const channel = this.channels.get(channelId);
    const item = channel?.entries.get(clientId);
    if (!channel || !item) return false;
    this.drop(channelId, channel, item.entry);
    return !this.online(channel, item.entry.userId, Date.now());
  }

  async list(channelId: string) {
    const now = Date.now();
    return [...(this.channels.get(channelId)?.entries.values() ?? [])]
      .filter((item) => item.expiresAt > now)
      .map((item) => item.entry);
  }

  async userOnline(channelId: string, userId: string) {
    return this.online(this.channels.get(channelId), userId, Date.now());
  }

  async sweep(channelId: string) {
    const channel = this.channels.get(channelId);
    if (!channel) return [];
    const now = Date.now();
    const expired: PresenceEntry[] = [];
    for (const item of channel.entries.values()) {
      if (item.expiresAt > now) continue;
      this.drop(channelId, channel, item.entry);
      expired.push(item.entry);
    }
    return expired;
  }

  private online(channel: MemoryChannel | undefined, userId: string, now: number, exceptClientId?: string) {
    for (const clientId of channel?.clientsByUser.get(userId) ?? []) {
      if (clientId !== exceptClientId && channel!.entries.get(clientId)!.expiresAt > now) return true;
    }
    return false;
  }

  private add(channelId: string, entry: PresenceEntry, expiresAt: number) {
    const channel = this.channels.get(channelId) ?? { entries: new Map(), clientsByUser: new Map() };
    this.channels.set(channelId, channel);
    channel.entries.set(entry.clientId, { entry, expiresAt });
    const clients = channel.clientsByUser.get(entry.userId);
    if (clients === undefined) channel.clientsByUser.set(entry.userId, [entry.clientId]);
    else if (!clients.includes(entry.clientId)) clients.push(entry.clientId);
  }

  private drop(channelId: string, channel: MemoryChannel, entry: PresenceEntry) {
    channel.entries.delete(entry.clientId);
    const clients = channel.clientsByUser.get(entry.userId)!;
    const at = clients.indexOf(entry.clientId);
    if (at >= 0) clients.splice(at, 1);
    if (clients.length === 0) channel.clientsByUser.delete(entry.userId);
    if (channel.entries.size === 0) this.channels.delete(channelId);
  }
}
