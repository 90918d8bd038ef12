import { MemoryBus } from "@wedsync/bus";
import { describe, expect, it } from "vitest";
import { HEAD_CHECK_BATCH, HEAD_TRUST_MS, LocalFanout } from "../src/fanout.ts";
import { Inbox } from "../src/inbox.ts";
import { postedMessage } from "./posted-message.ts";

const CHANNEL = "3f0c8a52-7a0e-4a57-9d1b-0c6a2f1e9b10";

const message = (seq: number) => postedMessage(CHANNEL, seq);

async function listening() {
  const fanout = new LocalFanout(new MemoryBus());
  await fanout.start();
  const inbox = new Inbox(16, "u1");
  await fanout.listen(CHANNEL, inbox);
  return { fanout, inbox };
}

describe("LocalFanout.liveHead", () => {
  it("knows no head until the store answered one for a channel listened to here", async () => {
    const { fanout } = await listening();
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
    fanout.storedHead(CHANNEL, 7, Date.now());
    expect(fanout.liveHead(CHANNEL)).toBe(7);
  });

  it("moves with what arrives live, and never below the stored head", async () => {
    const { fanout } = await listening();
    fanout.storedHead(CHANNEL, 7, Date.now());
    await fanout.publish(CHANNEL, message(8));
    expect(fanout.liveHead(CHANNEL)).toBe(8);
    fanout.storedHead(CHANNEL, 5, Date.now());
    expect(fanout.liveHead(CHANNEL)).toBe(8);
  });

  it("trusts a stored head for HEAD_TRUST_MS only", async () => {
    const { fanout } = await listening();
    const at = Date.now();
    fanout.storedHead(CHANNEL, 7, at);
    expect(fanout.liveHead(CHANNEL, at + HEAD_TRUST_MS)).toBe(7);
    expect(fanout.liveHead(CHANNEL, at + HEAD_TRUST_MS + 1)).toBeUndefined();
  });

  it("forgets the head once nobody here listens", async () => {
    const { fanout, inbox } = await listening();
    fanout.storedHead(CHANNEL, 7, Date.now());
    fanout.unlisten(CHANNEL, inbox);
    await fanout.listen(CHANNEL, new Inbox(16, "u2"));
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
  });

  it("knows none for a deleted channel, even from a read that was in flight when it went", async () => {
    const { fanout } = await listening();
    const readStarted = Date.now();
    fanout.storedHead(CHANNEL, 7, readStarted);
    await fanout.channelsGone([CHANNEL]);
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
    // The answer of a read that started before the deletion arrives after it.
    fanout.storedHead(CHANNEL, 7, readStarted);
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
  });

  it("knows none for a channel the head check no longer finds", async () => {
    const { fanout } = await listening();
    fanout.storedHead(CHANNEL, 7, Date.now());
    await fanout.reconcile(async () => []);
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
    fanout.storedHead(CHANNEL, 7, Date.now());
    expect(fanout.liveHead(CHANNEL)).toBeUndefined();
  });

  it("the head check reads HEAD_CHECK_BATCH heads per query, letting the event loop run between", async () => {
    const fanout = new LocalFanout(new MemoryBus());
    await fanout.start();
    const ids = Array.from(
      { length: HEAD_CHECK_BATCH + 5 },
      (_, i) => `${CHANNEL.slice(0, -6)}${String(i).padStart(6, "0")}`,
    );
    for (const id of ids) await fanout.listen(id, new Inbox(16, "u1"));
    const asked: number[] = [];
    let finished = false;
    let turnedDuring = false;
    setImmediate(() => {
      turnedDuring = !finished;
    });
    await fanout.reconcile(async (channelIds) => {
      asked.push(channelIds.length);
      return channelIds.map((id) => ({ id, lastSeq: 3 }));
    });
    finished = true;
    expect(asked).toEqual([HEAD_CHECK_BATCH, 5]);
    expect(turnedDuring).toBe(true);
    expect(fanout.liveHead(ids[0]!)).toBe(3);
    expect(fanout.liveHead(ids.at(-1)!)).toBe(3);
  });
});
