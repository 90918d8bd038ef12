import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { z } from "zod";
import { findHostileJson } from "./hostile-json.ts";
import { assertPayloadSize, broadcastInputSchema } from "./router/channel-router.ts";
import type { ChannelServices } from "./services.ts";
import { inboundWebhookKeys } from "./webhook-keys.ts";
import { SIGNATURE_TOLERANCE_SECONDS, verifyWebhookSignature } from "./webhook-signature.ts";

/** The sender of inbound webhook broadcasts in messages and audit rows (whichever configured key signed). */
export const INBOUND_WEBHOOK_SENDER = "webhook:inbound";
const AUDIT_ACTION = "webhook.inbound";
/** Extra time a used signature is remembered beyond its own validity, for clocks that differ between instances. */
const REPLAY_MARGIN_SECONDS = 60;

export interface InboundWebhookRequest {
  /** The raw body, exactly as received: the signature is over these bytes. */
  body: Uint8Array;
  /** The X-WedSync-Signature header (undefined when absent). */
  signature: string | string[] | undefined;
  /** The receiver's clock in unix seconds (tests). */
  now?: number;
}

export interface InboundWebhookResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Request bodies above this are refused with 413 before they are read to the end. */
export function inboundWebhookMaxBytes(services: Pick<ChannelServices, "config">): number {
  return services.config.CHANNELS_MAX_PAYLOAD_BYTES * 4;
}

function refuse(
  services: ChannelServices,
  status: number,
  code: string,
  message: string,
  audit: { actorId: string | null; reason: string; channelName?: string },
  extra: Record<string, unknown> = {},
): InboundWebhookResponse {
  services.audit.record({
    actorId: audit.actorId,
    action: AUDIT_ACTION,
    channelName: audit.channelName ?? null,
    outcome: "denied",
    reason: audit.reason,
    detail: { status },
  });
  return { status, body: { error: code, message, ...extra } };
}

/** 413 for a body over inboundWebhookMaxBytes; audited like every other refusal. */
export function refuseOversizedWebhook(services: ChannelServices): InboundWebhookResponse {
  const max = inboundWebhookMaxBytes(services);
  return refuse(services, 413, "PAYLOAD_TOO_LARGE", `request body is over ${max} bytes`, {
    actorId: null,
    reason: "body too large",
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * POST /webhooks/inbound: a broadcast from an external system, signed with one of the configured keys
 * (CHANNELS_WEBHOOK_SECRETS, CHANNELS_WEBHOOK_SECRET). Checks, in order: configured (503), signature
 * format, timestamp, key id and MAC (401), replay (409), body
 * (400), then the channel and the same path as channel.broadcast (403, 404, 429). Nothing is stored
 * unless every check passed; every refusal is audited.
 *
 * A signature is accepted once: retries of a failed request must be signed again (fresh `t`), and carry
 * the same idempotencyKey so that a retry of a request that did go through is stored once.
 */
export async function acceptInboundWebhook(
  services: ChannelServices,
  request: InboundWebhookRequest,
): Promise<InboundWebhookResponse> {
  const { config, metrics } = services;
  const keys = inboundWebhookKeys(config);
  if (keys.length === 0) {
    return {
      status: 503,
      body: {
        error: "UNAVAILABLE",
        message: "inbound webhooks are not configured (CHANNELS_WEBHOOK_SECRETS or CHANNELS_WEBHOOK_SECRET)",
      },
    };
  }

  const now = request.now ?? Math.floor(Date.now() / 1000);
  const check = verifyWebhookSignature({
    header: request.signature,
    body: request.body,
    secrets: keys,
    now,
  });
  if (!check.ok) {
    metrics.authFailures.inc();
    return refuse(services, 401, "UNAUTHORIZED", check.message, {
      actorId: null,
      reason: `signature ${check.reason}`,
    });
  }

  // Remembered (across instances, through the bus) for as long as the signature could still be accepted.
  const ttlSeconds = check.timestamp + SIGNATURE_TOLERANCE_SECONDS - now + REPLAY_MARGIN_SECONDS;
  let first: boolean;
  try {
    first = await services.bus.claimOnce(
      `webhook-signature:${check.timestamp}:${check.signature}`,
      ttlSeconds * 1000,
    );
  } catch {
    // Without the shared memory of used signatures a replay could not be told apart: fail closed.
    return {
      status: 503,
      body: { error: "UNAVAILABLE", message: "replay protection is unavailable; retry later" },
      headers: { "retry-after": "5" },
    };
  }
  if (!first) {
    metrics.authFailures.inc();
    return refuse(
      services,
      409,
      "CONFLICT",
      "this signature has been used already; sign every request anew",
      {
        actorId: null,
        reason: "signature replayed",
      },
    );
  }

  const actor = { actorId: INBOUND_WEBHOOK_SENDER };
  let raw: unknown;
  try {
    raw = JSON.parse(utf8.decode(request.body));
  } catch {
    return refuse(services, 400, "BAD_REQUEST", "the body is not UTF-8 JSON", {
      ...actor,
      reason: "malformed body",
    });
  }
  const hostile = findHostileJson(raw);
  if (hostile) return refuse(services, 400, "BAD_REQUEST", hostile, { ...actor, reason: "malformed body" });
  const parsed = broadcastInputSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(({ path, message }) => ({ path, message }));
    return refuse(
      services,
      400,
      "BAD_REQUEST",
      z.prettifyError(parsed.error),
      { ...actor, reason: "invalid body" },
      { issues },
    );
  }

  const { channelName, idempotencyKey, ...event } = parsed.data;
  try {
    assertPayloadSize(event.payload, config.CHANNELS_MAX_PAYLOAD_BYTES);
  } catch (error) {
    const message = (error as Error).message;
    return refuse(services, 400, "BAD_REQUEST", message, {
      ...actor,
      reason: "payload too large",
      channelName: channelName.name,
    });
  }

  try {
    const result = await services.manager.broadcastFromWebhook(
      INBOUND_WEBHOOK_SENDER,
      channelName,
      event,
      idempotencyKey ?? null,
    );
    return { status: 200, body: result };
  } catch (error) {
    // The manager has audited its refusals (FORBIDDEN, NOT_FOUND, TOO_MANY_REQUESTS) already.
    if (!(error instanceof TRPCError) || error.code === "INTERNAL_SERVER_ERROR") throw error;
    const retryAfterMs = (error.cause as { retryAfterMs?: number } | undefined)?.retryAfterMs;
    return {
      status: getHTTPStatusCodeFromError(error),
      body: { error: error.code, message: error.message },
      headers:
        retryAfterMs === undefined ? undefined : { "retry-after": String(Math.ceil(retryAfterMs / 1000)) },
    };
  }
}
