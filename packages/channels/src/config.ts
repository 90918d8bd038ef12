import { z } from "zod";
import { DEFAULT_WEBHOOK_KEY_ID, webhookKeyListSchema } from "./webhook-keys.ts";

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "7d", "5m", "30s", "250ms" -> milliseconds. */
const duration = z
  .string()
  .regex(DURATION, "must be a number followed by ms, s, m, h or d (e.g. 7d)")
  .transform((text) => {
    const [, amount, unit] = DURATION.exec(text)!;
    return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  });

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Node.js fires a timer set for longer than this after 1 ms: a longer interval would become a busy loop. */
const TIMER_MAX_MS = 2_147_483_647;
const TIMER_LIMIT = `must be at most ${TIMER_MAX_MS} ms (about 24.8 days), the longest a timer can wait`;
/** Milliseconds that set a timer. */
const timerMs = (fallback: number) =>
  z.coerce.number().int().positive().max(TIMER_MAX_MS, TIMER_LIMIT).default(fallback);
const url = z.url().optional();

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3001),
  DATABASE_URL: url,
  REDIS_URL: url,
  CHANNELS_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  CHANNELS_JWKS_URL: url,
  CHANNELS_JWT_ISSUER: z.string().optional(),
  CHANNELS_JWT_AUDIENCE: z.string().optional(),
  CHANNELS_DATA_DIR: z.string().default("./.data"),
  CHANNELS_RETENTION: duration.default(7 * UNIT_MS.d),
  CHANNELS_CHANNEL_IDLE: duration.default(30 * UNIT_MS.d),
  CHANNELS_CLEANUP_INTERVAL: duration.pipe(z.number().max(TIMER_MAX_MS, TIMER_LIMIT)).default(5 * UNIT_MS.m),
  CHANNELS_RATE_BROADCASTS_PER_MIN: positiveInt(100),
  CHANNELS_RATE_SUBSCRIBES_PER_HOUR: positiveInt(100),
  CHANNELS_TIER_FREE: positiveInt(3),
  CHANNELS_TIER_PAID: positiveInt(10),
  CHANNELS_HEARTBEAT_MS: timerMs(30_000),
  CHANNELS_HEARTBEAT_TIMEOUT_MS: timerMs(10_000),
  /** How often an instance compares channel heads in the store with what arrived live. */
  CHANNELS_HEAD_CHECK_MS: timerMs(5_000),
  /** How often each instance publishes its figures for admin.stats. */
  CHANNELS_STATS_INTERVAL_MS: timerMs(5_000),
  /** A presence entry not refreshed for this long (its instance died) expires. */
  CHANNELS_PRESENCE_TTL_MS: timerMs(30_000),
  CHANNELS_MAX_CONNECTIONS: positiveInt(10_000),
  CHANNELS_MAX_PAYLOAD_BYTES: positiveInt(32_768),
  /** New WebSocket connections one IP may open per minute (shared across instances). */
  CHANNELS_RATE_CONNECTIONS_PER_IP_PER_MIN: positiveInt(600),
  /** Live channel.events / presence.events subscriptions one connection may hold. */
  CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt(100),
  /** Take the client IP from X-Forwarded-For (only behind a proxy you run). */
  CHANNELS_TRUST_PROXY: z.stringbool().default(false),
  /** Messages one WebSocket connection may send per second before it is closed. */
  CHANNELS_RATE_MESSAGES_PER_CONNECTION: positiveInt(50),
  /** Bytes a socket may have queued for sending before its streams pause (slow consumer). */
  CHANNELS_MAX_BUFFERED_BYTES: positiveInt(1_048_576),
  /** How long a socket may stay over that bound before it is disconnected. */
  CHANNELS_SLOW_CONSUMER_TIMEOUT_MS: timerMs(5_000),
  /** encode-once: one serialization per message per instance; stock: tRPC's per-subscriber path (reference). */
  CHANNELS_FANOUT_MODE: z.enum(["encode-once", "stock"]).default("encode-once"),
  /** HMAC key of POST /webhooks/inbound as key id "default"; with neither this nor the next, the route answers 503. */
  CHANNELS_WEBHOOK_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** Named HMAC keys of POST /webhooks/inbound, all accepted: `k2:secret,k1:secret` (rotation). */
  CHANNELS_WEBHOOK_SECRETS: webhookKeyListSchema.optional(),
  /** Outbound webhooks may reach loopback and private addresses: development and tests only. */
  CHANNELS_WEBHOOK_ALLOW_PRIVATE: z.stringbool().default(false),
  /** Outbound webhooks: delay before the first retry; doubles per attempt (with jitter), capped at an hour. */
  CHANNELS_WEBHOOK_RETRY_BASE_MS: timerMs(30_000),
  /** Outbound webhooks: attempts per message before giving up. */
  CHANNELS_WEBHOOK_MAX_ATTEMPTS: positiveInt(8),
  /** Outbound webhooks: how long one POST may take. */
  CHANNELS_WEBHOOK_TIMEOUT_MS: timerMs(10_000),
  /**
   * Outbound webhooks: the longest an instance goes without looking for due deliveries. Its own
   * broadcasts wake it at once and it wakes for the earliest retry; this interval is for rows another
   * instance queued and did not deliver (it stopped).
   */
  CHANNELS_WEBHOOK_POLL_MS: timerMs(30_000),
  CHANNELS_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

/** Rules that span variables. */
const checkedEnvSchema = envSchema.superRefine((env, ctx) => {
  const named = env.CHANNELS_WEBHOOK_SECRETS ?? [];
  if (env.CHANNELS_WEBHOOK_SECRET && named.some((key) => key.id === DEFAULT_WEBHOOK_KEY_ID)) {
    ctx.addIssue({
      code: "custom",
      path: ["CHANNELS_WEBHOOK_SECRETS"],
      message: `key id "${DEFAULT_WEBHOOK_KEY_ID}" is CHANNELS_WEBHOOK_SECRET's; name this key otherwise or unset that variable`,
    });
  }
});

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads configuration from the environment; a wrong value throws naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = checkedEnvSchema.safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}
