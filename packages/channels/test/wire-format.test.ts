import superjson from "superjson";
import { describe, expect, it } from "vitest";
import { compactPrefix, fromCompact } from "../src/compact-frame.ts";
import type { ChannelMessage } from "../src/message.ts";
import {
  channelsTransformer,
  channelsWsEncoder,
  decodeMessage,
  encodeMessage,
  expectStartedFrame,
  liveFrame,
} from "../src/wire-format.ts";

const message = (): ChannelMessage => ({
  type: "message",
  id: "0b6f6f59-5a0c-4b1e-9d8e-3a8d2c1f0e11:7",
  channel: "collaboration:s1:c1",
  seq: 7,
  event: "timeline.updated",
  payload: { itemId: "ceremony", title: 'Ceremony "at 2pm" — ünïcödé 🎉', startsAt: "2027-06-12T14:00:00Z" },
  senderId: "couple-1",
  sentAt: new Date("2026-11-29T13:00:00.123Z"),
});

/** What the tRPC ws adapter sends for one tracked item: transform the response, then encode it. */
function frame(
  transform: (value: unknown) => unknown,
  encode: (response: unknown) => string,
  data: ChannelMessage,
  jsonrpc?: "2.0",
) {
  const result = { type: "data", data: { id: data.id, data }, id: data.id };
  return encode({ id: 42, jsonrpc, result: { ...result, data: transform(result.data) } });
}

const stock = (data: ChannelMessage, jsonrpc?: "2.0") =>
  frame((v) => superjson.serialize(v), JSON.stringify, data, jsonrpc);
const encodedOnce = (data: ChannelMessage, jsonrpc?: "2.0") =>
  frame(channelsTransformer.serialize, channelsWsEncoder.encode, data, jsonrpc);

describe("encode-once wire format", () => {
  it("sends what stock tRPC + superjson would send for a published message", () => {
    const published = message();
    encodeMessage(published);
    expect(JSON.parse(encodedOnce(published))).toEqual(JSON.parse(stock(message())));
    expect(JSON.parse(encodedOnce(published, "2.0"))).toEqual(JSON.parse(stock(message(), "2.0")));
  });

  it("round-trips through the bus frame: the receiving instance reuses the text", () => {
    const received = decodeMessage(encodeMessage(message()));
    expect(received).toEqual(message());
    expect(received.sentAt).toBeInstanceOf(Date);
    expect(JSON.parse(encodedOnce(received))).toEqual(JSON.parse(stock(message())));
  });

  it("lets a client using plain superjson read the frame back", () => {
    const published = message();
    encodeMessage(published);
    const { result } = JSON.parse(encodedOnce(published));
    expect(superjson.deserialize(result.data)).toEqual({ id: published.id, data: message() });
  });

  it("serializes messages that were never pre-encoded exactly like superjson", () => {
    const plain = message();
    expect(encodedOnce(plain)).toBe(stock(plain));
    expect(channelsTransformer.serialize({ hello: new Date(0) })).toEqual(
      superjson.serialize({ hello: new Date(0) }),
    );
  });

  it("stays correct if a pre-encoded value reaches a plain JSON serializer", () => {
    const published = message();
    encodeMessage(published);
    const viaStockEncoder = frame(channelsTransformer.serialize, JSON.stringify, published);
    expect(JSON.parse(viaStockEncoder)).toEqual(JSON.parse(stock(message())));
  });
});

describe("live frames written by a stream itself", () => {
  const started = (jsonrpc?: "2.0") =>
    channelsWsEncoder.encode({ id: 42, jsonrpc, result: { type: "started" } });

  it("are what tRPC would send on the subscription whose `started` followed the stream's first step", () => {
    for (const jsonrpc of [undefined, "2.0"] as const) {
      let prefix: string | undefined;
      let requestId: string | number | null = null;
      expectStartedFrame({
        startedAs: (p, id) => {
          prefix = p;
          requestId = id;
        },
      });
      started(jsonrpc);
      const published = message();
      encodeMessage(published);
      const live = liveFrame(published, prefix!, undefined);
      expect(JSON.parse(live!.toString("utf8"))).toEqual(JSON.parse(stock(message(), jsonrpc)));
      // Built once: every subscriber with the same request id writes the same bytes.
      expect(liveFrame(published, prefix!, undefined)).toBe(live);
      // The compact frame a stream builds from that request id answers the same request.
      const compact = liveFrame(published, prefix!, compactPrefix(requestId));
      expect(JSON.parse(compact!.toString("utf8"))[0]).toBe(42);
    }
  });

  it("are not offered for a message that was never encoded once", () => {
    expect(liveFrame(message(), '{"id":1,', undefined)).toBeUndefined();
    expect(liveFrame(message(), '{"id":1,', "[1,")).toBeUndefined();
  });

  it("stay off when another frame is encoded between the stream's first step and a `started`", () => {
    let prefix: string | undefined;
    expectStartedFrame({
      startedAs: (p) => {
        prefix = p;
      },
    });
    channelsWsEncoder.encode({ id: 7, result: { type: "data", data: { hello: "world" } } });
    started();
    expect(prefix).toBeUndefined();
  });
});

describe("compact live frames", () => {
  const prefix = '{"id":42,';
  const compactPrefix = "[42,";
  const published = () => {
    const sent = message();
    encodeMessage(sent);
    return sent;
  };

  it("carry the message a client decodes exactly as from tRPC's frame, in half the bytes", () => {
    // As published on this instance, and as received from another one over the bus.
    for (const sent of [published(), decodeMessage(encodeMessage(message()))]) {
      const compact = liveFrame(sent, prefix, compactPrefix)!;
      const parsed = JSON.parse(compact.toString("utf8"));
      // One flat array, the request id first.
      expect(parsed).toHaveLength(8);
      expect(parsed[0]).toBe(42);
      const viaTrpc = superjson.deserialize<{ data: ChannelMessage }>(
        JSON.parse(stock(message())).result.data,
      );
      expect(fromCompact(parsed)).toEqual(viaTrpc.data);
      expect(compact.length).toBeLessThan(liveFrame(sent, prefix, undefined)!.length * 0.6);
      expect(liveFrame(sent, prefix, compactPrefix)).toBe(compact);
      // Another request id, another frame with the same message.
      const other = JSON.parse(liveFrame(sent, '{"id":"s-7",', '["s-7",')!.toString("utf8"));
      expect(other[0]).toBe("s-7");
      expect(other.slice(1)).toEqual(parsed.slice(1));
    }
  });

  it("are not used for a message superjson needs more than sentAt for: the client gets tRPC's frame", () => {
    const withDate = {
      ...message(),
      payload: { itemId: "x", title: "t", startsAt: new Date(0) },
    } as unknown as ChannelMessage;
    encodeMessage(withDate);
    const received = decodeMessage(encodeMessage(withDate));
    for (const sent of [withDate, received]) {
      const frame = JSON.parse(liveFrame(sent, prefix, compactPrefix)!.toString("utf8"));
      expect(frame.id).toBe(42);
      expect(superjson.deserialize<{ data: unknown }>(frame.result.data).data).toEqual(withDate);
    }
  });

  it("decode to nothing when malformed", () => {
    const m = JSON.parse(liveFrame(published(), prefix, compactPrefix)!.toString("utf8"));
    expect(fromCompact(m)).toEqual(message());
    for (const bad of [[], m.slice(0, 7), [...m, 1], [42, 1, ...m.slice(2)], [...m.slice(0, 7), "soon"]])
      expect(fromCompact(bad)).toBeUndefined();
  });
});
