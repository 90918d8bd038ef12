import { type ChannelMessage, messageId } from "../src/message.ts";

/** A message posted at `seq` on the channel with row id `channelId`, as the fan-out carries it. */
export const postedMessage = (channelId: string, seq: number): ChannelMessage => ({
  type: "message",
  id: messageId(channelId, seq),
  channel: "supplier:dashboard:s1",
  seq,
  event: "message.posted",
  payload: { text: `m${seq}` },
  senderId: "u1",
  sentAt: new Date(),
});
