import { randomBytes } from "node:crypto";
import type { WebhookDelivery } from "@wedsync/db";
import { z } from "zod";
import { messageId } from "./message.ts";

const MAX_URL_LENGTH = 2_048;
/** Retries never wait longer than this, whatever CHANNELS_WEBHOOK_RETRY_BASE_MS and the attempt count say. */
const MAX_RETRY_DELAY_MS = 3_600_000;

/** A new outbound secret: 32 random bytes, printable. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

/**
 * Outbound webhook URLs: http or https only, no credentials (the signature authenticates us to the
 * receiver). Where the host points is WebhookTargets' job: it needs DNS, and the owner's rights first.
 */
export const webhookUrlSchema = z
  .string()
  .max(MAX_URL_LENGTH)
  .transform((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: "custom", message: "url is not an absolute URL" });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: "webhook URLs must be http or https" });
      return z.NEVER;
    }
    if (url.username !== "" || url.password !== "") {
      ctx.addIssue({ code: "custom", message: "webhook URLs may not contain credentials" });
      return z.NEVER;
    }
    url.hash = "";
    return url.toString();
  });

/** A secret chosen by the owner instead of a generated one. */
export const webhookSecretSchema = z
  .string()
  .min(16, "a webhook secret is at least 16 characters")
  .max(256)
  .regex(/^[\x21-\x7e]+$/, "a webhook secret is printable ASCII without spaces");

/** What a receiver gets: the message as clients see it, `sentAt` as an ISO string. */
export function webhookDeliveryBody(delivery: Pick<WebhookDelivery, "channelName" | "message">): string {
  const { message } = delivery;
  return JSON.stringify({
    id: messageId(message.channelId, message.seq),
    channel: delivery.channelName,
    seq: message.seq,
    event: message.event,
    payload: message.payload,
    senderId: message.senderId,
    sentAt: message.createdAt.toISOString(),
  });
}

/**
 * Delay before the next attempt after `attempts` failed ones: base x 2^(attempts-1), capped, with "equal
 * jitter" (half fixed, half random) so receivers coming back from an outage are not hit in lockstep.
 */
export function webhookRetryDelay(attempts: number, baseMs: number, random = Math.random): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attempts - 1), MAX_RETRY_DELAY_MS);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
