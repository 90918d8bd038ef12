import { setImmediate as nextTurn } from "node:timers/promises";
import { MemoryBus } from "@wedsync/bus";
import { describe, expect, it, vi } from "vitest";
import { LocalFanout } from "../src/fanout.ts";
import { FANOUT_BACKLOG, FANOUT_PASS_LISTENERS } from "../src/fanout-passes.ts";
import type { FanoutListener } from "../src/inbox.ts";
import type { LiveWrites } from "../src/live-writes.ts";
import type { ChannelMessage } from "../src/message.ts";
import { postedMessage } from "./posted-message.ts";

const CHANNEL = "3f0c8a52-7a0e-4a57-9d1b-0c6a2f1e9b10";
const message = (seq: number) => postedMessage(CHANNEL, seq);
const BIG = FANOUT_PASS_LISTENERS * 2;

/** A subscriber that keeps the seqs it was handed. */
class Recorder implements FanoutListener {
  readonly userId = "u1";
  readonly seqs: number[] = [];
  deliver(message: ChannelMessage, writes: LiveWrites) {
    this.seqs.push(message.seq);
    writes.wrote(Date.now());
  }
  resync() {}
  revoke() {}
  channelGone() {}
}

async function channelWith(subscribers: number, onError = () => {}) {
  const fanout = new LocalFanout(new MemoryBus(), onError);
  await fanout.start();
  const recorders = Array.from({ length: subscribers }, () => new Recorder());
  for (const recorder of recorders) await fanout.listen(CHANNEL, recorder);
  const holding = (seqs: string) => recorders.filter((r) => r.seqs.join() === seqs).length;
  return { fanout, recorders, holding };
}

describe(`local fan-out of a channel with up to ${FANOUT_PASS_LISTENERS} subscribers`, () => {
  it("hands each message to every subscriber at once", async () => {
    const { fanout, holding } = await channelWith(FANOUT_PASS_LISTENERS);
    void fanout.publish(CHANNEL, message(1));
    expect(holding("1")).toBe(FANOUT_PASS_LISTENERS);
  });
});

describe(`local fan-out of a channel with more than ${FANOUT_PASS_LISTENERS} subscribers`, () => {
  it("answers the publisher first, then hands the message to every subscriber", async () => {
    const { fanout, holding } = await channelWith(BIG);
    let heldWhenAnswered = -1;
    await fanout.publish(CHANNEL, message(1)).then(() => {
      heldWhenAnswered = holding("1");
    });
    await nextTurn();
    expect(heldWhenAnswered).toBe(0);
    expect(holding("1")).toBe(BIG);
  });

  it("gives every subscriber every message once and in seq order, over several passes", async () => {
    const { fanout, holding } = await channelWith(BIG);
    await Promise.all([fanout.publish(CHANNEL, message(1)), fanout.publish(CHANNEL, message(2))]);
    await nextTurn();
    await fanout.publish(CHANNEL, message(3));
    await fanout.publish(CHANNEL, message(4));
    await vi.waitFor(() => expect(holding("1,2,3,4")).toBe(BIG));
  });

  it("hands nothing to a subscriber that leaves before the pass", async () => {
    const { fanout, recorders, holding } = await channelWith(BIG + 1);
    const leaving = recorders.pop()!;
    void fanout.publish(CHANNEL, message(1));
    fanout.unlisten(CHANNEL, leaving);
    await nextTurn();
    expect(holding("1")).toBe(BIG);
    expect(leaving.seqs).toEqual([]);
  });

  it(`makes a publisher wait for its message's pass once the channel is ${FANOUT_BACKLOG} deliveries behind`, async () => {
    const { fanout, recorders } = await channelWith(BIG);
    const behind = Math.floor(FANOUT_BACKLOG / BIG);
    const lowest = () => Math.min(...recorders.map((r) => r.seqs.length));
    const heldWhenAnswered = new Map<number, number>();
    const published = Array.from({ length: behind + 1 }, (_, i) =>
      fanout.publish(CHANNEL, message(i + 1)).then(() => heldWhenAnswered.set(i + 1, lowest())),
    );
    await Promise.all(published);
    // Within the backlog: answered before its fan-out. Past it: only once every subscriber has it.
    expect(heldWhenAnswered.get(behind)).toBe(0);
    expect(heldWhenAnswered.get(behind + 1)).toBe(behind + 1);
  });

  it("reports a subscriber that fails and still reaches the others", async () => {
    const onError = vi.fn();
    const { fanout, recorders, holding } = await channelWith(BIG, onError);
    const failure = new Error("socket gone");
    vi.spyOn(recorders[5]!, "deliver").mockImplementation(() => {
      throw failure;
    });
    await fanout.publish(CHANNEL, message(1));
    await nextTurn();
    expect(onError).toHaveBeenCalledWith(failure);
    expect(holding("1")).toBe(BIG - 1);
  });

  it("counts every write of each broadcast of a pass", async () => {
    const counted: Array<{ seq: number; writes: LiveWrites }> = [];
    const fanout = new LocalFanout(new MemoryBus(), undefined, (writes, m) =>
      counted.push({ seq: m.seq, writes }),
    );
    await fanout.start();
    for (let i = 0; i < BIG; i++) await fanout.listen(CHANNEL, new Recorder());
    await Promise.all([fanout.publish(CHANNEL, message(1)), fanout.publish(CHANNEL, message(2))]);
    await nextTurn();
    expect(counted.map((c) => c.seq)).toEqual([1, 2]);
    const deliveries = { inc: vi.fn() };
    const metrics = { deliveries, liveWrites: { inc: vi.fn() }, deliveryLatency: { observe: vi.fn() } };
    counted[1]!.writes.account(metrics as never, Date.now());
    expect(deliveries.inc).toHaveBeenCalledWith(BIG);
  });
});
