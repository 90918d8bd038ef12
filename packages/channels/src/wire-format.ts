import superjson from "superjson";
import { findHostileJson } from "./hostile-json.ts";
import type { ChannelMessage } from "./message.ts";

/**
 * Encode once, send to many. A message is serialized (superjson, then JSON) once per instance,
 * and that text is spliced into every subscriber's tRPC frame instead of running superjson and
 * JSON.stringify per subscriber. Frames stay byte-for-byte what stock tRPC + superjson would
 * send, so clients keep using `@trpc/client` unchanged.
 */

/** The serialized form of a tracked message, as `superjson.serialize({ id, data })` then JSON. */
const preEncoded = new WeakMap<object, string>();

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
  const json = JSON.stringify(superjson.serialize({ id: message.id, data: message }));
  preEncoded.set(message, json);
  return json;
}

/** Decodes a bus frame once per instance, remembering its text for the subscribers' frames. */
export function decodeMessage(frame: string): ChannelMessage {
  const { data } = superjson.parse<{ id: string; data: ChannelMessage }>(frame);
  preEncoded.set(data, frame);
  return data;
}

/** An input refused before it was copied; see channelsTransformer.deserialize. */
export class HostileInput {
  constructor(readonly reason: string) {}
}

/** superjson, except for tracked messages that were already encoded, and hostile inputs. */
export const channelsTransformer = {
  serialize(value: unknown): unknown {
    const data = (value as { data?: unknown } | null)?.data;
    const json = typeof data === "object" && data !== null ? preEncoded.get(data) : undefined;
    return json === undefined ? superjson.serialize(value) : new RawJson(json);
  },
  /**
   * Inputs: hostile shapes are caught while the raw JSON still shows them (superjson drops
   * `__proto__`). They become a HostileInput that the procedure refuses with BAD_REQUEST: throwing
   * here would make tRPC's WebSocket adapter answer with `id: null`, leaving the call unanswered.
   */
  deserialize(value: unknown): unknown {
    const hostile = findHostileJson(value);
    if (hostile) return new HostileInput(hostile);
    return superjson.deserialize(value as Parameters<typeof superjson.deserialize>[0]);
  },
};

interface WsResponse {
  id: unknown;
  jsonrpc?: string;
  result?: { type: string; id?: string; data?: unknown };
}

/** The WebSocket encoder: splices pre-encoded message text into the frame, JSON for everything else. */
export const channelsWsEncoder = {
  encode(response: unknown): string {
    const { id, jsonrpc, result } = response as WsResponse;
    if (!(result?.data instanceof RawJson)) return JSON.stringify(response);
    const version = jsonrpc === undefined ? "" : `"jsonrpc":${JSON.stringify(jsonrpc)},`;
    return `{"id":${JSON.stringify(id)},${version}"result":{"type":"data","id":${JSON.stringify(result.id)},"data":${result.data.json}}}`;
  },
  decode(data: string | ArrayBuffer | Uint8Array): unknown {
    if (typeof data !== "string") throw new Error("expected a text frame");
    return JSON.parse(data);
  },
};
