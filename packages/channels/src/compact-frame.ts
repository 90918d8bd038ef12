import type { ChannelMessage } from "./message.ts";

/**
 * The compact live frame, which `@wedsync/client` asks for and stock tRPC clients never get.
 *
 * tRPC's data frame for a live message carries the message id three times (the tracked id, the
 * envelope's, the message's), the superjson `meta` for `sentAt`, and the message as an object: about
 * 500 bytes, which the client must parse and then walk. Receiving it cost a client about twice what
 * the bare `ws` baseline's 127-byte frame cost (the bench's load generator: ~20 µs against ~10 µs of
 * CPU per delivery, even for a client that only parses the frame). The compact frame is a 7-array with
 * the message's fields in a fixed order, half the bytes and one small array to parse.
 *
 * Negotiated, like a WebSocket subprotocol: a client that sends `frames: "compact-1"` among its
 * connectionParams may receive, for a live message on a subscription, `{"id":<request id>,"m":[…]}`
 * instead of tRPC's data frame. Everything else (started, catch-up, resets, errors, stopped) stays
 * tRPC's frames, so such a client must understand both. Without the parameter, or with a value the
 * server does not know, a connection gets only tRPC's frames.
 */
export const FRAMES_PARAM = "frames";
export const COMPACT_FRAMES = "compact-1";

/** The `m` array: the message's fields in this order, `sentAt` as epoch milliseconds. */
type CompactMessage = [
  id: string,
  channel: string,
  seq: number,
  event: string,
  payload: unknown,
  senderId: string,
  sentAtMs: number,
];

/** The `m` array's JSON for a message whose fields are all plain JSON except `sentAt`. */
export function compactJson(message: ChannelMessage): string {
  const { id, channel, seq, event, payload, senderId, sentAt } = message;
  const compact: CompactMessage = [id, channel, seq, event, payload, senderId, sentAt.getTime()];
  return JSON.stringify(compact);
}

/** The message an `m` array stands for, exactly as tRPC's frame would have decoded; undefined if malformed. */
export function fromCompact(m: unknown): ChannelMessage | undefined {
  if (!Array.isArray(m) || m.length !== 7) return undefined;
  const [id, channel, seq, event, payload, senderId, sentAtMs] = m as CompactMessage;
  if (
    typeof id !== "string" ||
    typeof channel !== "string" ||
    typeof seq !== "number" ||
    typeof event !== "string" ||
    typeof senderId !== "string" ||
    typeof sentAtMs !== "number"
  )
    return undefined;
  return {
    type: "message",
    id,
    channel,
    seq,
    event,
    payload,
    senderId,
    sentAt: new Date(sentAtMs),
  } as ChannelMessage;
}
