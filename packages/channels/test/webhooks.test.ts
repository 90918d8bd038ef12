import { describe, expect, it } from "vitest";
import {
  generateWebhookSecret,
  webhookDeliveryBody,
  webhookRetryDelay,
  webhookSecretSchema,
  webhookUrlSchema,
} from "../src/webhooks.ts";

describe("webhook URLs", () => {
  it.each([
    ["https://hooks.example.com/wedsync?x=1", "https://hooks.example.com/wedsync?x=1"],
    ["http://127.0.0.1:8080/in", "http://127.0.0.1:8080/in"],
    ["HTTPS://Example.COM/a#frag", "https://example.com/a"],
  ])("accepts %s", (url, normalized) => {
    expect(webhookUrlSchema.parse(url)).toBe(normalized);
  });

  it.each([
    ["ftp://example.com/x", "http or https"],
    ["javascript:alert(1)", "http or https"],
    ["file:///etc/passwd", "http or https"],
    ["https://user:pass@example.com/", "credentials"],
    ["https://token@example.com/", "credentials"],
    ["/relative/path", "absolute URL"],
    ["not a url", "absolute URL"],
    [`https://example.com/${"a".repeat(2_100)}`, "2048"],
  ])("refuses %s", (url, why) => {
    const result = webhookUrlSchema.safeParse(url);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(why);
  });
});

describe("webhook secrets", () => {
  it("generated secrets are long, printable and different", () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(generateWebhookSecret()).not.toBe(a);
    expect(webhookSecretSchema.safeParse(a).success).toBe(true);
  });

  it("chosen secrets are 16-256 printable characters", () => {
    expect(webhookSecretSchema.safeParse("short").success).toBe(false);
    expect(webhookSecretSchema.safeParse("with a space in it!").success).toBe(false);
    expect(webhookSecretSchema.safeParse("x".repeat(257)).success).toBe(false);
    expect(webhookSecretSchema.safeParse("0123456789abcdef").success).toBe(true);
  });
});

describe("webhook retry delays", () => {
  it("double per attempt between half and all of the step, capped at an hour", () => {
    const low = () => 0;
    const high = () => 1;
    expect([1, 2, 3, 4].map((n) => webhookRetryDelay(n, 1_000, high))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect([1, 2, 3, 4].map((n) => webhookRetryDelay(n, 1_000, low))).toEqual([500, 1_000, 2_000, 4_000]);
    expect(webhookRetryDelay(30, 30_000, high)).toBe(3_600_000);
    for (let i = 0; i < 100; i++) {
      const d = webhookRetryDelay(3, 100);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});

describe("webhook delivery body", () => {
  it("is the message as clients see it, sentAt as ISO text", () => {
    const channelId = "6434e089-8b2c-4c5a-bf1e-5622d377359d";
    const sentAt = new Date("2027-06-12T14:00:00.123Z");
    const body = webhookDeliveryBody({
      channelName: "form:response:f1:s1",
      message: {
        channelId,
        seq: 7,
        event: "form.response",
        payload: { formId: "f1", submissionId: "s1", fields: { guests: 2 } },
        senderId: "anna",
        idempotencyKey: "k",
        createdAt: sentAt,
        expiresAt: new Date(),
      },
    });
    expect(JSON.parse(body)).toEqual({
      id: `${channelId}:7`,
      channel: "form:response:f1:s1",
      seq: 7,
      event: "form.response",
      payload: { formId: "f1", submissionId: "s1", fields: { guests: 2 } },
      senderId: "anna",
      sentAt: "2027-06-12T14:00:00.123Z",
    });
  });
});
