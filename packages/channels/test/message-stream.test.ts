import { MemoryBus } from "@wedsync/bus";
import type { ChannelRow } from "@wedsync/db";
import { describe, expect, it } from "vitest";
import { LocalFanout } from "../src/fanout.ts";
import { openChannelStream } from "../src/message-stream.ts";
import { createMetrics } from "../src/metrics.ts";
import { postedMessage } from "./posted-message.ts";

const CHANNEL = "6d2b0f1e-3c4a-4e8b-9f7d-1a2b3c4d5e6f";

/** A fresh stream from the head of a channel with three messages, as a socket's subscription opens it. */
async function opened(signal: AbortSignal) {
  const fanout = new LocalFanout(new MemoryBus());
  await fanout.start();
  let ended = 0;
  const stream = await openChannelStream({
    subscriber: {
      userId: "u1",
      store: () => {
        throw new Error("a stream from the head reads nothing from the store");
      },
      stillAllowed: async () => true,
      end: () => {
        ended++;
      },
    },
    heads: async () => [{ id: CHANNEL, lastSeq: 3 }],
    fanout,
    metrics: createMetrics({ liveChannels: () => 0, queuedMessages: async () => 0 }),
    channel: { id: CHANNEL, name: "supplier:dashboard:s1" } as ChannelRow,
    afterSeq: null,
    signal,
    sendLimits: { maxBufferedBytes: 1 << 20, timeoutMs: 1_000 },
    inboxCapacity: 16,
    pageSize: 100,
  });
  return { fanout, stream, ended: () => ended };
}

const listeners = (fanout: LocalFanout) => fanout.counts().listeners;

describe("a channel stream whose subscription stops before anyone iterates it", () => {
  it("is released the moment its signal aborts (fan-out listener and subscriber), not 30 s later", async () => {
    const controller = new AbortController();
    const { fanout, stream, ended } = await opened(controller.signal);
    expect(listeners(fanout)).toBe(1);
    expect(ended()).toBe(0);

    controller.abort();
    expect(listeners(fanout)).toBe(0);
    expect(ended()).toBe(1);
    // Iterated after all, it yields nothing and ends nothing twice.
    expect(await stream[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    expect(ended()).toBe(1);
  });

  it("opened on a signal that already aborted holds nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    const { fanout, ended } = await opened(controller.signal);
    expect(listeners(fanout)).toBe(0);
    expect(ended()).toBe(1);
  });

  it("once iterated, ends through its own loop on abort, once", async () => {
    const controller = new AbortController();
    const { fanout, stream, ended } = await opened(controller.signal);
    const next = stream[Symbol.asyncIterator]().next();
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(listeners(fanout)).toBe(0);
    expect(ended()).toBe(1);
  });
});

describe("a channel stream whose channel is deleted", () => {
  it("sends what it holds, then ends with NOT_FOUND and lets go of the channel", async () => {
    const { fanout, stream, ended } = await opened(new AbortController().signal);
    const iterator = stream[Symbol.asyncIterator]();
    const first = iterator.next();
    await fanout.publish(CHANNEL, postedMessage(CHANNEL, 4));
    await fanout.channelsGone([CHANNEL]);

    // tRPC's tracked envelope: [id, data, marker].
    expect(((await first).value as unknown[])[1]).toMatchObject({ type: "message", seq: 4 });
    await expect(iterator.next()).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "channel supplier:dashboard:s1 was deleted",
    });
    expect(listeners(fanout)).toBe(0);
    expect(ended()).toBe(1);
  });
});
