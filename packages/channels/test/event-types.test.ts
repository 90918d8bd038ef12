import { describe, expect, it } from "vitest";
import { type ChannelEvent, eventSchema } from "../src/events.ts";

describe("event types", () => {
  it("tie each payload to its event name (checked by tsc, confirmed at run time)", () => {
    // @ts-expect-error a timeline payload is not a message.posted payload
    const wrong: ChannelEvent = { event: "message.posted", payload: { itemId: "x", title: "t" } };
    const right: ChannelEvent = { event: "timeline.updated", payload: { itemId: "x", title: "t" } };
    expect(eventSchema.safeParse(wrong).success).toBe(false);
    expect(eventSchema.safeParse(right).success).toBe(true);
  });
});
