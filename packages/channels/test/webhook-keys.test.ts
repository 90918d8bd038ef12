import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { inboundWebhookKeys } from "../src/webhook-keys.ts";

const secret2 = "s2_0123456789abcdefghijklmnopqrstuv";
const secret1 = "s1_0123456789abcdefghijklmnopqrstuv";
const single = "single_0123456789abcdefghijklmnopqr";

const keysOf = (env: Record<string, string>) => inboundWebhookKeys(loadConfig(env));

describe("inbound webhook keys (CHANNELS_WEBHOOK_SECRETS, CHANNELS_WEBHOOK_SECRET)", () => {
  it("reads id:secret pairs in order; a secret may contain ':'; spaces around entries are dropped", () => {
    expect(keysOf({ CHANNELS_WEBHOOK_SECRETS: `k2:${secret2}, k1:${secret1}:x` })).toEqual([
      { id: "k2", secret: secret2 },
      { id: "k1", secret: `${secret1}:x` },
    ]);
  });

  it("keeps the single secret working as key id 'default', beside named keys", () => {
    expect(keysOf({ CHANNELS_WEBHOOK_SECRET: single })).toEqual([{ id: "default", secret: single }]);
    expect(keysOf({ CHANNELS_WEBHOOK_SECRET: single, CHANNELS_WEBHOOK_SECRETS: `k2:${secret2}` })).toEqual([
      { id: "k2", secret: secret2 },
      { id: "default", secret: single },
    ]);
    expect(keysOf({})).toEqual([]);
  });

  it.each([
    ["a short secret", `k2:${secret2},k1:short`, "at least 32 characters"],
    ["a duplicate id", `k1:${secret2},k1:${secret1}`, "unique"],
    ["an entry without a colon", `k2:${secret2},${secret1}`, "<key id>:<secret>"],
    ["an empty id", `:${secret2}`, "key id"],
    ["an id with a slash", `k/2:${secret2}`, "key id"],
    ["an id over 64 characters", `${"k".repeat(65)}:${secret2}`, "key id"],
    ["a secret with a space", `k2:${secret2} ${secret1}`, "without spaces"],
    ["a trailing comma", `k2:${secret2},`, "<key id>:<secret>"],
  ])("refuses %s, naming the variable and never the secret", (_, value, why) => {
    const error = (() => {
      try {
        loadConfig({ CHANNELS_WEBHOOK_SECRETS: value });
      } catch (caught) {
        return caught as Error;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toContain("CHANNELS_WEBHOOK_SECRETS");
    expect(error?.message).toContain(why);
    expect(error?.message).not.toContain(secret2.slice(3));
  });

  it("refuses a named key called 'default' while CHANNELS_WEBHOOK_SECRET holds that id", () => {
    expect(() =>
      loadConfig({ CHANNELS_WEBHOOK_SECRET: single, CHANNELS_WEBHOOK_SECRETS: `default:${secret2}` }),
    ).toThrow(/CHANNELS_WEBHOOK_SECRETS: key id "default" is CHANNELS_WEBHOOK_SECRET's/);
    expect(keysOf({ CHANNELS_WEBHOOK_SECRETS: `default:${secret2}` })).toEqual([
      { id: "default", secret: secret2 },
    ]);
  });
});
