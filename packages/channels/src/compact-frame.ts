import type { ChannelMessage } from "./message.ts";

/**
 * The compact live frame, which `@wedsync/client` asks for and stock tRPC clients never get.
 *
 * tRPC's data frame for a live message carries the message id three times (the tracked id, the
 * envelope's, the message's), the superjson `meta` for `sentAt`, and the message as an object: about
 * 500 bytes, which the client must parse and then walk. Receiving it cost a client about twice what
 * the bare `ws` baseline's 127-byte frame cost (the bench's load generator: ~20 µs against ~10 µs of
 * CPU per delivery, even for a client that only parses the frame). The compact frame is one flat
 * array: the request id, then the message's fields in a fixed order. JSON.parse pays mostly per
 * object and array it builds, not per byte: an earlier form, `{"id":<request id>,"m":[…]}`, took
 * 2.2 µs to parse against 1.7 µs for the flat array (probe, medians of 60 interleaved rounds on
 * one machine; the baseline's frame 1.3 µs).
 *
 * Negotiated, like a WebSocket subprotocol: a client that sends `frames: "compact-2"` among its
 * connectionParams may receive, for a live message on a subscription, `[<request id>, …]` instead
 * of tRPC's data frame. Everything else (started, catch-up, resets, errors, stopped) stays tRPC's
 * frames, which are always objects, so such a client must understand both. Without the parameter,
 * or with a value the server does not know (`compact-1`, the earlier form, included), a connection
 * gets only tRPC's frames.
 */
export const FRAMES_PARAM = "frames";
export const COMPACT_FRAMES = "compact-2";

/** The frame: the request id, then the message's fields in this order, `sentAt` as epoch milliseconds. */
type CompactFrame = [
  requestId: number | string,
  id: string,
  channel: string,
  seq: number,
  event: string,
  payload: unknown,
  senderId: string,
  sentAtMs: number,
];

/** How every compact frame answering this request starts. */
export const compactPrefix = (requestId: number | string | null) => `[${JSON.stringify(requestId)},`;

/**
 * The frame's JSON after its prefix, for a message whose fields are all plain JSON except `sentAt`:
 * the same for every subscriber, whatever its request id.
 */
export function compactBody(message: ChannelMessage): string {
  const { id, channel, seq, event, payload, senderId, sentAt } = message;
  return JSON.stringify([id, channel, seq, event, payload, senderId, sentAt.getTime()]).slice(1);
}

/** The message a compact frame carries, exactly as tRPC's frame would have decoded; undefined if malformed. */
export function fromCompact(frame: readonly unknown[]): ChannelMessage | undefined {
  if (frame.length !== 8) return undefined;
  const [, id, channel, seq, event, payload, senderId, sentAtMs] = frame as CompactFrame;
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
