import { describe, expect, it } from "vitest";
import { findHostileJson } from "../src/hostile-json.ts";

describe("findHostileJson", () => {
  it("passes ordinary broadcast input", () => {
    const input = {
      channelName: "supplier:dashboard:s1",
      event: "form.response",
      payload: { fields: { a: [1, 2] } },
    };
    expect(findHostileJson(input)).toBeUndefined();
  });

  it.each(["__proto__", "constructor", "prototype"])("rejects a %s key at any depth", (key) => {
    const input = JSON.parse(`{"payload":{"fields":{"${key}":{"polluted":true}}}}`);
    expect(findHostileJson(input)).toContain(key);
  });

  it("rejects deep nesting without recursing", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findHostileJson(deep)).toMatch(/nested deeper/);
  });

  it("rejects inputs with too many values", () => {
    expect(findHostileJson({ list: Array.from({ length: 20_000 }, (_, i) => i) })).toMatch(/more than/);
  });
});
