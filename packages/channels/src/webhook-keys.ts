import { z } from "zod";
import { WEBHOOK_KEY_ID, type WebhookKey } from "./webhook-signature.ts";

/** The key id of CHANNELS_WEBHOOK_SECRET, the single secret that predates named keys. */
export const DEFAULT_WEBHOOK_KEY_ID = "default";

const MIN_SECRET_LENGTH = 32;

const keySchema = z.object({
  id: z.string().regex(WEBHOOK_KEY_ID, "a key id is 1-64 characters A-Z a-z 0-9 _ . -"),
  secret: z
    .string()
    .min(MIN_SECRET_LENGTH, `a secret is at least ${MIN_SECRET_LENGTH} characters`)
    // Commas separate entries and spaces are lost by shells and secret stores.
    .regex(/^[\x21-\x2b\x2d-\x7e]+$/, "a secret is printable ASCII without spaces or commas"),
});

/**
 * CHANNELS_WEBHOOK_SECRETS: `<id>:<secret>,<id>:<secret>…`, every key accepted at once so that a new
 * one can be added before senders switch to it and the old one removed after. A secret may contain
 * `:` (the id ends at the first one). Messages never echo a secret.
 */
export const webhookKeyListSchema = z
  .string()
  .transform((text, ctx) =>
    text.split(",").map((entry, index) => {
      const colon = entry.indexOf(":");
      if (colon < 0) {
        ctx.addIssue({ code: "custom", path: [index], message: "each entry is <key id>:<secret>" });
        return { id: entry.trim(), secret: "" };
      }
      return { id: entry.slice(0, colon).trim(), secret: entry.slice(colon + 1).trim() };
    }),
  )
  .pipe(
    z
      .array(keySchema)
      .refine((keys) => new Set(keys.map((key) => key.id)).size === keys.length, "key ids must be unique"),
  );

/** Every key POST /webhooks/inbound accepts: the named ones, then the single secret as "default". */
export function inboundWebhookKeys(config: {
  CHANNELS_WEBHOOK_SECRETS?: readonly WebhookKey[] | undefined;
  CHANNELS_WEBHOOK_SECRET?: string | undefined;
}): WebhookKey[] {
  const single = config.CHANNELS_WEBHOOK_SECRET;
  return [
    ...(config.CHANNELS_WEBHOOK_SECRETS ?? []),
    ...(single ? [{ id: DEFAULT_WEBHOOK_KEY_ID, secret: single }] : []),
  ];
}
