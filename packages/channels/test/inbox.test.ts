import { describe, expect, it } from "vitest";
import { Inbox } from "../src/inbox.ts";
import { LiveWrites } from "../src/live-writes.ts";
import type { ChannelMessage } from "../src/message.ts";

const message = (seq: number) => ({ seq }) as ChannelMessage;
const writes = new LiveWrites();

describe("Inbox", () => {
  it("hands out messages in arrival order", () => {
    const inbox = new Inbox(10, "u1");
    for (const seq of [1, 2, 3]) inbox.deliver(message(seq), writes);
    expect([inbox.take()?.seq, inbox.take()?.seq, inbox.take()?.seq, inbox.take()]).toEqual([
      1,
      2,
      3,
      undefined,
    ]);
  });

  it("drops everything and flags a resync instead of growing past its capacity", () => {
    const inbox = new Inbox(2, "u1");
    for (const seq of [1, 2, 3, 4]) inbox.deliver(message(seq), writes);
    expect(inbox.takeLost()).toBe(true);
    expect(inbox.take()).toBeUndefined();
    expect(inbox.takeLost()).toBe(false);
    inbox.deliver(message(5), writes);
    expect(inbox.take()?.seq).toBe(5);
  });

  it("wakes a waiting reader on delivery and on abort", async () => {
    const inbox = new Inbox(2, "u1");
    const waiting = inbox.wait(new AbortController().signal);
    inbox.deliver(message(1), writes);
    await waiting;
    expect(inbox.take()?.seq).toBe(1);

    const controller = new AbortController();
    const aborted = inbox.wait(controller.signal);
    controller.abort();
    await aborted;
    expect(inbox.take()).toBeUndefined();
  });

  it("offers live messages to the waiting reader's writer, and none once the reader's signal aborted", async () => {
    const inbox = new Inbox(10, "u1");
    const offered: number[] = [];
    const writer = {
      offer: (m: ChannelMessage) => {
        offered.push(m.seq);
        return true;
      },
    };
    const controller = new AbortController();
    const waiting = inbox.wait(controller.signal, writer);
    inbox.deliver(message(1), writes);
    controller.abort();
    inbox.deliver(message(2), writes);
    await waiting;
    expect(offered).toEqual([1]);
    expect(inbox.take()?.seq).toBe(2);
  });
});
