/** One connection's presence in one channel. */
export interface PresenceEntry {
  /** Unique per connection and channel (a user with two devices has two). */
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
  remove(channelId: string, clientId: string): Promise<void>;
  /** Live entries of a channel (expired ones are never returned). */
  list(channelId: string): Promise<PresenceEntry[]>;
  /** Removes expired entries and returns them; each expired entry is returned to one caller only. */
  sweep(channelId: string): Promise<PresenceEntry[]>;
}

/** In-process presence for the embedded default. */
export class MemoryPresence implements PresenceStore {
  private readonly channels = new Map<string, Map<string, { entry: PresenceEntry; expiresAt: number }>>();

  async upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number) {
    const expiresAt = Date.now() + ttlMs;
    for (const { channelId, entry } of entries) {
      const channel = this.channels.get(channelId) ?? new Map();
      this.channels.set(channelId, channel);
      channel.set(entry.clientId, { entry, expiresAt });
    }
  }

  async remove(channelId: string, clientId: string) {
    const channel = this.channels.get(channelId);
    channel?.delete(clientId);
    if (channel?.size === 0) this.channels.delete(channelId);
  }

  async list(channelId: string) {
    const now = Date.now();
    return [...(this.channels.get(channelId)?.values() ?? [])]
      .filter((item) => item.expiresAt > now)
      .map((item) => item.entry);
  }

  async sweep(channelId: string) {
    const channel = this.channels.get(channelId);
    if (!channel) return [];
    const now = Date.now();
    const expired: PresenceEntry[] = [];
    for (const [clientId, item] of channel) {
      if (item.expiresAt > now) continue;
      channel.delete(clientId);
      expired.push(item.entry);
    }
    if (channel.size === 0) this.channels.delete(channelId);
    return expired;
  }
}
