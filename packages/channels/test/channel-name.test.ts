import { describe, expect, it } from "vitest";
import { channelNameSchema, parseChannelName } from "../src/channel-name.ts";

describe("parseChannelName", () => {
  it.each([
    ["supplier:dashboard:s1", "private", { kind: "supplier-dashboard", supplierId: "s1" }],
    ["couple:dashboard:c_1", "private", { kind: "couple-dashboard", coupleId: "c_1" }],
    ["collaboration:s1:c1", "shared", { kind: "collaboration", supplierId: "s1", coupleId: "c1" }],
    ["form:response:f1:sub-9", "shared", { kind: "form-response", formId: "f1", submissionId: "sub-9" }],
    ["journey:milestone:c1:m1", "shared", { kind: "journey-milestone", coupleId: "c1", milestoneId: "m1" }],
    ["venue:broadcast:v1", "broadcast", { kind: "venue-broadcast", venueId: "v1" }],
  ])("accepts %s as a %s channel", (name, type, address) => {
    const parsed = parseChannelName(name);
    expect(parsed).toMatchObject({ name, type, address });
  });

  it("splits scope, entity and entity id the way channel.create builds them", () => {
    expect(parseChannelName("form:response:f1:s2")).toMatchObject({
      scope: "form",
      entity: "response",
      entityId: "f1:s2",
    });
    expect(parseChannelName("collaboration:s1:c1")).toMatchObject({
      scope: "collaboration",
      entity: "s1",
      entityId: "c1",
    });
  });

  it.each([
    ["", "empty name"],
    ["supplier:dashboard", "missing id"],
    ["supplier:dashboard:s1:extra", "extra segment"],
    ["supplier:profile:s1", "unknown entity"],
    ["wedding:dashboard:s1", "unknown scope"],
    ["supplier:dashboard:", "empty segment"],
    ["supplier::s1", "empty middle segment"],
    ["supplier:dashboard:s 1", "space"],
    ["supplier:dashboard:s1/..", "path characters"],
    ["supplier:dashboard:<script>", "markup"],
    ["supplier:dashboard:sé", "non-ASCII"],
    [`supplier:dashboard:${"a".repeat(65)}`, "65-character segment"],
    ["form:response:f1", "form without submission"],
    ["venue:broadcast:v1:x", "venue with extra segment"],
  ])("rejects %j (%s) with a readable reason", (name) => {
    const parsed = parseChannelName(name);
    expect(parsed).toHaveProperty("error");
    expect((parsed as { error: string }).error.length).toBeGreaterThan(10);
  });

  it("accepts 64-character segments", () => {
    expect(parseChannelName(`supplier:dashboard:${"a".repeat(64)}`)).not.toHaveProperty("error");
  });
});

describe("channelNameSchema", () => {
  it("gives every input naming a channel the same read-only parse", () => {
    const first = channelNameSchema.parse("collaboration:s1:c9");
    const again = channelNameSchema.parse("collaboration:s1:c9");
    expect(again).toBe(first);
    expect(first).toMatchObject({ scope: "collaboration", entityId: "c9", type: "shared" });
    expect(Object.isFrozen(first) && Object.isFrozen(first.address)).toBe(true);
    expect(() => {
      (first as { name: string }).name = "supplier:dashboard:s2";
    }).toThrow(TypeError);
  });

  it("refuses a name outside the rules table every time, with the parser's reason", () => {
    for (let i = 0; i < 2; i++) {
      const result = channelNameSchema.safeParse("venue:broadcast:v1:x");
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toMatch(/unknown channel pattern/);
    }
  });
});
