import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";

describe("loadConfig", () => {
  it("uses the documented defaults on an empty environment", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3001,
      CHANNELS_DATA_DIR: "./.data",
      CHANNELS_RETENTION: 7 * 86_400_000,
      CHANNELS_RATE_BROADCASTS_PER_MIN: 100,
      CHANNELS_RATE_SUBSCRIBES_PER_HOUR: 100,
      CHANNELS_TIER_FREE: 3,
      CHANNELS_TIER_PAID: 10,
      CHANNELS_HEARTBEAT_MS: 30_000,
      CHANNELS_HEARTBEAT_TIMEOUT_MS: 10_000,
      CHANNELS_MAX_CONNECTIONS: 10_000,
      CHANNELS_MAX_PAYLOAD_BYTES: 32_768,
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.CHANNELS_WEBHOOK_ALLOW_PRIVATE).toBe(false);
  });

  it.each([
    ["5m", 300_000],
    ["30s", 30_000],
    ["12h", 43_200_000],
    ["250ms", 250],
  ])("reads CHANNELS_RETENTION=%s", (text, ms) => {
    expect(loadConfig({ CHANNELS_RETENTION: text }).CHANNELS_RETENTION).toBe(ms);
  });

  it.each([
    ["PORT", "http"],
    ["CHANNELS_TIER_FREE", "-1"],
    ["CHANNELS_RETENTION", "a week"],
    ["DATABASE_URL", "not a url"],
    ["CHANNELS_JWT_SECRET", "short"],
    ["CHANNELS_WEBHOOK_SECRET", "short"],
    ["CHANNELS_WEBHOOK_MAX_ATTEMPTS", "0"],
    ["CHANNELS_WEBHOOK_ALLOW_PRIVATE", "maybe"],
    // Past what a Node.js timer waits: it would fire after 1 ms, every time.
    ["CHANNELS_WEBHOOK_POLL_MS", "2147483648"],
    ["CHANNELS_HEARTBEAT_MS", "99999999999"],
    ["CHANNELS_CLEANUP_INTERVAL", "25d"],
  ])("refuses %s=%s naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("takes timer settings up to the longest a timer waits", () => {
    const config = loadConfig({ CHANNELS_WEBHOOK_POLL_MS: "2147483647", CHANNELS_CLEANUP_INTERVAL: "24d" });
    expect(config.CHANNELS_WEBHOOK_POLL_MS).toBe(2_147_483_647);
    expect(config.CHANNELS_CLEANUP_INTERVAL).toBe(24 * 86_400_000);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ DATABASE_URL: "" }).DATABASE_URL).toBeUndefined();
  });
});
