import superjson from "superjson";
import { describe, expect, it } from "vitest";
import { toWire } from "../src/superjson-wire.ts";

describe("toWire", () => {
  const values: Array<[string, unknown]> = [
    ["a subscription input", { channelName: "supplier:dashboard:s1", lastEventId: "c1:42" }],
    ["nested plain values", { a: [1, "two", true, null, { b: [] }], c: { d: 0.5 } }],
    ["a string", "text"],
    ["null", null],
    ["undefined", undefined],
    ["an undefined property", { channelName: "x", lastEventId: undefined }],
    ["a sparse array", Object.assign([1], { 2: 3 })],
    ["a Date", { at: new Date(0) }],
    ["NaN and -0", { a: Number.NaN, b: -0, c: Number.POSITIVE_INFINITY }],
    ["a Map and a Set", { m: new Map([["k", 1]]), s: new Set([1]) }],
    ["a BigInt", { n: 10n }],
    ["a class instance", { e: new Error("x") }],
    ["a null-prototype object", Object.assign(Object.create(null), { a: 1 })],
    ["a dotted key", { "a.b": 1, "c\\d": [2] }],
    ["a __proto__ key", JSON.parse('{"__proto__": {"polluted": true}}')],
    [
      "a shared reference",
      (() => {
        const shared = { x: 1 };
        return { a: shared, b: shared };
      })(),
    ],
  ];

  /** The wire text, or the error that refused the value (superjson refuses a __proto__ key). */
  const outcome = (encode: () => unknown) => {
    try {
      return JSON.stringify(encode());
    } catch (error) {
      return `refused: ${(error as Error).message}`;
    }
  };

  it.each(values)("encodes %s exactly as superjson does", (_, value) => {
    expect(outcome(() => toWire(value))).toBe(outcome(() => superjson.serialize(value)));
  });
});
