import type { MessageRow } from "@wedsync/db";
import type { ChannelEvent } from "./events.ts";

/** A message as clients see it (DESIGN.md "Public API"). */
export type ChannelMessage = {
  type: "message";
  id: string;
  channel: string;
  seq: number;
  senderId: string;
  sentAt: Date;
} & ChannelEvent;

/** What the client missed is older than retention or unknown: it should refetch state. */
export interface ChannelReset {
  type: "reset";
  channel: string;
  reason: "retention" | "unknown";
  oldestSeq: number | null;
}

export type ChannelStreamItem = ChannelMessage | ChannelReset;

/**
 * Message ids name the channel's epoch (its row id) and the seq, so a resume point can be
 * checked without a lookup and stays meaningful after the message itself has expired.
 */
export function messageId(channelId: string, seq: number): string {
  return `${channelId}:${seq}`;
}

const MESSAGE_ID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,15})$/;

export function parseMessageId(id: string): { channelId: string; seq: number } | undefined {
  const match = MESSAGE_ID.exec(id);
  return match ? { channelId: match[1]!, seq: Number(match[2]) } : undefined;
}

export function toChannelMessage(row: MessageRow, channelName: string): ChannelMessage {
  return {
    type: "message",
    id: messageId(row.channelId, row.seq),
    channel: channelName,
    seq: row.seq,
    event: row.event,
    payload: row.payload,
    senderId: row.senderId,
    sentAt: row.createdAt,
  } as ChannelMessage;
}
