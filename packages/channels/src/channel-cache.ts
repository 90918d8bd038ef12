import type { ChannelRow } from "@wedsync/db";
import { setBounded } from "./bounded-map.ts";

/**
 * Channel rows by name, so the broadcast path does not look the channel up on every message.
 * What is used of a cached row (id, name, type, creator) never changes; a channel only goes
 * away through cleanup, and a write that finds it gone makes the caller forget it.
 * Fields that do change (lastSeq, lastActivity) must be read from the store, never from here.
 */
export class ChannelCache {
  private readonly rows = new Map<string, ChannelRow>();

  constructor(private readonly capacity = 10_000) {}

  /**
   * A miss is looked up as the caller (`lookup`, which is only called then: making the caller's store
   * view is work a hit does not need). A hit is served to anyone: callers authorize from the name and
   * the caller's own grant, never from having found the row.
   */
  async find(name: string, lookup: (name: string) => Promise<ChannelRow | undefined>) {
    const cached = this.rows.get(name);
    if (cached) return cached;
    const row = await lookup(name);
    if (row) this.remember(row);
    return row;
  }

  remember(row: ChannelRow) {
    setBounded(this.rows, row.name, row, this.capacity);
  }

  forget(name: string) {
    this.rows.delete(name);
  }
}
