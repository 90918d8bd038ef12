import superjson from "superjson";
import { compactBody } from "./compact-frame.ts";
import { findHostileJson } from "./hostile-json.ts";
import type { ChannelMessage } from "./message.ts";

/**
 * Encode once, send to many. A message is serialized (superjson, then JSON) once per instance,
 * and that text is spliced into every subscriber's tRPC frame instead of running superjson and
 * JSON.stringify per subscriber. Frames stay byte-for-byte what stock tRPC + superjson would
 * send, so clients keep using `@trpc/client` unchanged.
 */

/**
 * The serialized form of a tracked message, as `superjson.serialize({ id, data })` then JSON, and
 * the whole frames built from it, one per subscription request prefix (see `liveFrame`).
 */
interface Encoded {
  json: string;
  /** superjson needed `meta` for `sentAt` alone, so the compact frame can carry the message. */
  compactable: boolean;
  frames?: Map<string, Buffer>;
  /** The compact frame after its prefix, once a connection asked for it. */
  compact?: string;
  compactFrames?: Map<string, Buffer>;
}
const preEncoded = new WeakMap<object, Encoded>();

/** Stands in for an already-serialized value inside a tRPC response until the encoder splices it. */
class RawJson {
  constructor(readonly json: string) {}
  /** Keeps any other serializer (HTTP, a stock encoder) correct, just slower. */
  toJSON() {
    return JSON.parse(this.json);
  }
}

/** Serializes a message once; the text is the bus frame and the body of every subscriber's frame. */
export function encodeMessage(message: ChannelMessage): string {
  const serialized = superjson.serialize({ id: message.id, data: message });
  const json = JSON.stringify(serialized);
  preEncoded.set(message, { json, compactable: onlySentAt(serialized.meta) });
  return json;
}

/** Decodes a bus frame once per instance, remembering its text for the subscribers' frames. */
export function decodeMessage(frame: string): ChannelMessage {
  const serialized = JSON.parse(frame) as Parameters<typeof superjson.deserialize>[0];
  const compactable = onlySentAt(serialized.meta);
  const { data } = superjson.deserialize<{ id: string; data: ChannelMessage }>(serialized, { inPlace: true });
  preEncoded.set(data, { json: frame, compactable });
  return data;
}

function onlySentAt(meta: { values?: unknown } | undefined): boolean {
  const values = meta?.values as Record<string, unknown> | undefined;
  if (values === undefined) return false;
  const paths = Object.keys(values);
  return paths.length === 1 && paths[0] === "data.sentAt";
}

/** An input refused before it was copied; see channelsTransformer.deserialize. */
export class HostileInput {
  constructor(readonly reason: string) {}
}

/** superjson, except for tracked messages that were already encoded, and hostile inputs. */
export const channelsTransformer = {
  serialize(value: unknown): unknown {
    const data = (value as { data?: unknown } | null)?.data;
    const encoded = typeof data === "object" && data !== null ? preEncoded.get(data) : undefined;
    return encoded === undefined ? superjson.serialize(value) : new RawJson(encoded.json);
  },
  /**
   * Inputs: hostile shapes are caught while the raw JSON still shows them (superjson drops
   * `__proto__`). They become a HostileInput that the procedure refuses with BAD_REQUEST: throwing
   * here would make tRPC's WebSocket adapter answer with `id: null`, leaving the call unanswered.
   */
  deserialize(value: unknown): unknown {
    const hostile = findHostileJson(value);
    if (hostile) return new HostileInput(hostile);
    // In place, as superjson.parse does: tRPC hands over JSON it has just parsed and keeps no other use
    // of it, so copying every input first (copy-anything) would only make garbage.
    return superjson.deserialize(value as Parameters<typeof superjson.deserialize>[0], { inPlace: true });
  },
};

export interface WsResponse {
  id: string | number | null;
  jsonrpc?: string;
  result?: { type: string; id?: string; data?: unknown };
}

/** How every frame answering one request starts: `{"id":…,` and the request's jsonrpc, if it sent one. */
const requestPrefix = (id: WsResponse["id"], jsonrpc: string | undefined) =>
  jsonrpc === undefined
    ? `{"id":${JSON.stringify(id)},`
    : `{"id":${JSON.stringify(id)},"jsonrpc":${JSON.stringify(jsonrpc)},`;

const dataFrame = (prefix: string, trackedId: string | undefined, json: string) =>
  `${prefix}"result":{"type":"data","id":${JSON.stringify(trackedId)},"data":${json}}}`;

/** A subscription that wants to know which request it answers once tRPC has started it. */
export interface StartingSubscription {
  /** How tRPC's frames answering the request start, and the request's id (for compact frames). */
  startedAs(framePrefix: string, requestId: WsResponse["id"]): void;
}

let starting: StartingSubscription | undefined;

/**
 * The server's WebSocket handler (apps/server trpc-ws-subscription.ts, like tRPC's own adapter)
 * runs a subscription's first step and then, in the same synchronous run, encodes `started` for that
 * subscription: nothing else is encoded in between. A WebSocket stream
 * that calls this from its first step is told, by that `started` frame, the prefix of the frames
 * answering it, so it can write live messages to its socket itself, byte for byte as tRPC would.
 * Any other frame encoded first cancels the expectation: the stream then stays on tRPC's path.
 */
export function expectStartedFrame(subscription: StartingSubscription) {
  starting = subscription;
}

/**
 * The text frame for this live message on the subscription whose frames start with `framePrefix`:
 * the one tRPC would send, or the compact frame starting with `compactFramePrefix` when the
 * connection asked for compact frames (else undefined) and the message fits them. Built once per
 * message, prefix and kind, as bytes: every socket with that prefix writes the same buffer.
 * Undefined for a message that was not encoded once (a row read from the store).
 */
export function liveFrame(
  message: ChannelMessage,
  framePrefix: string,
  compactFramePrefix: string | undefined,
): Buffer | undefined {
  const encoded = preEncoded.get(message);
  if (encoded === undefined) return undefined;
  // Looked up before anything is built: this runs once per subscriber of every live message.
  if (compactFramePrefix !== undefined && encoded.compactable) {
    encoded.compactFrames ??= new Map();
    const frame = encoded.compactFrames.get(compactFramePrefix);
    if (frame !== undefined) return frame;
    encoded.compact ??= compactBody(message);
    return remember(encoded.compactFrames, compactFramePrefix, compactFramePrefix + encoded.compact);
  }
  encoded.frames ??= new Map();
  return (
    encoded.frames.get(framePrefix) ??
    remember(encoded.frames, framePrefix, dataFrame(framePrefix, message.id, encoded.json))
  );
}

function remember(frames: Map<string, Buffer>, framePrefix: string, text: string): Buffer {
  const frame = Buffer.from(text);
  frames.set(framePrefix, frame);
  return frame;
}

/** The WebSocket encoder: splices pre-encoded message text into the frame, JSON for everything else. */
export const channelsWsEncoder = {
  encode(response: unknown): string {
    const { id, jsonrpc, result } = response as WsResponse;
    const subscription = starting;
    starting = undefined;
    if (result?.type === "started") subscription?.startedAs(requestPrefix(id, jsonrpc), id);
    if (!(result?.data instanceof RawJson)) return JSON.stringify(response);
    return dataFrame(requestPrefix(id, jsonrpc), result.id, result.data.json);
  },
  decode(data: string | ArrayBuffer | Uint8Array): unknown {
    if (typeof data !== "string") throw new Error("expected a text frame");
    return JSON.parse(data);
  },
};
