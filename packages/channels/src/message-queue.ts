import type { ChannelRow, ChannelStore } from "@wedsync/db";
import type { ChannelEvent } from "./events.ts";
import { type ChannelMessage, parseMessageId, toChannelMessage } from "./message.ts";

/**
 * Durable per-channel message log with a delivery cursor per subscriber: what a user has not
 * acknowledged stays pending until it expires (retention).
 */
export class MessageQueue {
  /** `store` in every method is the caller's view of the store (row level security applies to it). */
  constructor(private readonly retentionMs: number) {}

  /** Stores the message at the channel's next seq; resolves only once it is durable. */
  async enqueueMessage(
    store: ChannelStore,
    channel: ChannelRow,
    senderId: string,
    event: ChannelEvent,
    idempotencyKey: string | null,
  ): Promise<{ message: ChannelMessage; duplicate: boolean }> {
    const { message, duplicate } = await store.appendMessage({
      channelId: channel.id,
      event: event.event,
      payload: event.payload,
      senderId,
      idempotencyKey,
      expiresAt: new Date(Date.now() + this.retentionMs),
    });
    return { message: toChannelMessage(message, channel.name), duplicate };
  }

  /** The message already stored under this idempotency key, if any. */
  async findRetried(
    store: ChannelStore,
    channel: ChannelRow,
    idempotencyKey: string,
  ): Promise<ChannelMessage | undefined> {
    const row = await store.findMessageByIdempotencyKey(channel.id, idempotencyKey);
    return row && toChannelMessage(row, channel.name);
  }

  /** Unacknowledged messages across the user's active subscriptions. */
  async dequeueMessagesForUser(
    store: ChannelStore,
    userId: string,
    limit: number,
  ): Promise<ChannelMessage[]> {
    const rows = await store.pendingMessages(userId, limit, new Date());
    return rows.map((row) => toChannelMessage(row, row.channelName));
  }

  /**
   * Acknowledges messages: each channel's cursor moves to the highest acknowledged seq.
   * Ids of channels the user is not subscribed to move nothing. Returns the cursors moved.
   */
  markMessageDelivered(store: ChannelStore, userId: string, messageIds: readonly string[]): Promise<number> {
    const acks = messageIds.map(parseMessageId).filter((ack) => ack !== undefined);
    return acks.length === 0 ? Promise.resolve(0) : store.ack(userId, acks);
  }

  /** Null when another instance is cleaning up right now. */
  cleanupExpiredMessages(store: ChannelStore, now = new Date()): Promise<number | null> {
    return store.deleteExpiredMessages(now);
  }
}
