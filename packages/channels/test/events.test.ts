import { describe, expect, it } from "vitest";
import { eventSchema } from "../src/events.ts";
import { toPlainText } from "../src/sanitize.ts";

describe("event registry", () => {
  it("accepts each registered event with a valid payload", () => {
    const valid = [
      { event: "message.posted", payload: { text: "See you at 2pm" } },
      {
        event: "timeline.updated",
        payload: { itemId: "ceremony", title: "Ceremony", startsAt: "2027-06-12T14:00:00Z" },
      },
      {
        event: "venue.changed",
        payload: { venueId: "v1", change: "Moved to the garden", note: "rain plan" },
      },
      {
        event: "form.response",
        payload: { formId: "f1", submissionId: "s1", fields: { guests: 80, vegan: true } },
      },
      { event: "journey.milestone", payload: { milestoneId: "m1", status: "completed" } },
    ];
    for (const input of valid) expect(eventSchema.safeParse(input).success, input.event).toBe(true);
  });

  it.each([
    ["unknown event", { event: "timeline.deleted", payload: { itemId: "x" } }],
    ["missing field", { event: "timeline.updated", payload: { itemId: "x" } }],
    ["extra key", { event: "message.posted", payload: { text: "hi", admin: true } }],
    ["wrong type", { event: "message.posted", payload: { text: 42 } }],
    ["bad date", { event: "timeline.updated", payload: { itemId: "x", title: "t", startsAt: "tomorrow" } }],
    [
      "nested object field",
      { event: "form.response", payload: { formId: "f", submissionId: "s", fields: { a: { b: 1 } } } },
    ],
    [
      "empty text after sanitizing",
      { event: "message.posted", payload: { text: "<script>alert(1)</script>" } },
    ],
  ])("rejects %s", (_label, input) => {
    expect(eventSchema.safeParse(input).success).toBe(false);
  });

  it("sanitizes text fields as part of validation", () => {
    const parsed = eventSchema.parse({
      event: "message.posted",
      payload: { text: 'Hi <img src=x onerror="alert(1)">there' },
    });
    expect(parsed.payload).toEqual({ text: "Hi there" });
  });
});

describe("toPlainText", () => {
  it.each([
    ["<script>alert(1)</script>hello", "hello"],
    ['<a href="javascript:alert(1)">click</a>', "click"],
    ["javascript:alert(1)", "alert(1)"],
    ["<<script>script>alert(1)<</script>/script>", ""],
    ["<svg/onload=alert(1)>x", "x"],
  ])("removes executable markup from %j", (input, expected) => {
    const output = toPlainText(input);
    expect(output).toBe(expected);
    expect(output).not.toMatch(/<script|onerror=|javascript:/i);
  });

  it.each(["Tom & Jerry", "5 < 6 and 7 > 3", "I <3 you", "a<b", "x <y", "café 🎉 — ok", 'She said "yes"'])(
    "keeps ordinary text %j unchanged",
    (text) => {
      expect(toPlainText(text)).toBe(text);
    },
  );

  it("leaves entity-encoded text alone: it is inert as plain text", () => {
    expect(toPlainText("&lt;script&gt;")).toBe("&lt;script&gt;");
  });

  it("drops control characters", () => {
    expect(toPlainText("a\u0000b\u0007c\nd")).toBe("abc\nd");
  });
});
