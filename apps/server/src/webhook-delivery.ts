import {
  type ChannelServices,
  SIGNATURE_HEADER,
  signWebhook,
  webhookDeliveryBody,
  webhookRetryDelay,
} from "@wedsync/channels";
import type { WebhookDelivery } from "@wedsync/db";
import type { Logger } from "pino";
import { postPinned } from "./pinned-post.ts";

/** Deliveries claimed (and POSTed concurrently) per round. */
const BATCH = 50;
/** Rounds in a row while every round comes back full, so that one wake cannot hold the worker forever. */
const MAX_ROUNDS = 20;
const MAX_ERROR_LENGTH = 500;
/**
 * After a round that failed (the database unreachable), the next is tried after this, doubling with each
 * failure in a row up to CHANNELS_WEBHOOK_POLL_MS: a short outage delays deliveries by about its length,
 * not by the poll ceiling, and a long one is not hammered.
 */
const FAILED_ROUND_RETRY_MS = 1_000;

type Outcome = { ok: true; status: number } | { ok: false; error: string; status?: number };

/**
 * Delivers the outbox. A commit on this instance that queued rows wakes the worker at once; after each
 * round it sleeps until the earliest row is due (a retry, or a lease running out), and never longer than
 * CHANNELS_WEBHOOK_POLL_MS, which is how it finds rows another instance queued and could not deliver
 * (it stopped). So an idle instance does not query the outbox every second: on the embedded database
 * that empty claim held the event loop 1.9-8.3 ms (median 3.0) each time, amid live deliveries.
 * A round claims due rows (FOR UPDATE SKIP LOCKED plus a lease, so instances never deliver one row at
 * the same time), checks where each URL's host points now (WebhookTargets: public addresses only unless
 * CHANNELS_WEBHOOK_ALLOW_PRIVATE; a refused host is a failed attempt), POSTs the message signed with its
 * webhook's secret to exactly the addresses checked, marks 2xx answers delivered and schedules anything
 * else for a retry with exponential backoff and jitter, giving up after CHANNELS_WEBHOOK_MAX_ATTEMPTS.
 * Every attempt is audited (`webhook.deliver`). At-least-once: receivers dedupe by the message `id`.
 *
 * Returns a stop function that aborts requests in flight (they are retried at once by whichever
 * instance claims them next) and resolves when the worker is idle.
 */
export function scheduleWebhookDeliveries(services: ChannelServices, logger: Logger): () => Promise<void> {
  const { config, serviceStore: store, metrics, audit, webhookTargets } = services;
  const timeoutMs = config.CHANNELS_WEBHOOK_TIMEOUT_MS;
  // Longer than a round can take (all of its POSTs run at once, each bounded by the timeout).
  const leaseMs = timeoutMs * 2 + 30_000;
  const stopping = new AbortController();
  let running: Promise<void> | undefined;

  async function post(delivery: WebhookDelivery): Promise<Outcome> {
    const body = webhookDeliveryBody(delivery);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([timeout, stopping.signal]);
    try {
      const url = new URL(delivery.url);
      const target = await webhookTargets.check(url, signal);
      if (!target.ok) return { ok: false, error: target.reason };
      const status = await postPinned(url, {
        addresses: target.addresses,
        headers: {
          "content-type": "application/json",
          "user-agent": "WedSync-Webhooks/1",
          [SIGNATURE_HEADER]: signWebhook(delivery.secret, body),
          "x-wedsync-webhook-id": delivery.webhookId,
          "x-wedsync-delivery-attempt": String(delivery.attempts),
        },
        body,
        signal,
      });
      if (status >= 200 && status < 300) return { ok: true, status };
      return { ok: false, error: `HTTP ${status}`, status };
    } catch (error) {
      if (timeout.aborted) return { ok: false, error: `no answer within ${timeoutMs} ms` };
      if (stopping.signal.aborted) return { ok: false, error: "interrupted by shutdown" };
      const e = error as NodeJS.ErrnoException;
      return { ok: false, error: e.code ?? e.message };
    }
  }

  async function deliver(delivery: WebhookDelivery) {
    const outcome = await post(delivery);
    const detail = {
      webhookId: delivery.webhookId,
      seq: delivery.message.seq,
      attempt: delivery.attempts,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
    };
    const record = (outcome: "ok" | "error", reason: string | null) =>
      audit.record({
        actorId: `webhook:${delivery.webhookId}`,
        action: "webhook.deliver",
        channelName: delivery.channelName,
        outcome,
        reason,
        detail,
      });
    if (outcome.ok) {
      await store.completeWebhookDelivery(delivery.id, new Date());
      metrics.webhookDeliveries.inc({ outcome: "delivered" });
      record("ok", null);
      return;
    }
    const error = outcome.error.slice(0, MAX_ERROR_LENGTH);
    if (stopping.signal.aborted) {
      // Not the receiver's fault: hand it back for an immediate retry without giving up on it.
      await store.failWebhookDelivery({
        id: delivery.id,
        attempts: delivery.attempts,
        error,
        retryAt: new Date(),
      });
      return;
    }
    const giveUp = delivery.attempts >= config.CHANNELS_WEBHOOK_MAX_ATTEMPTS;
    const delayMs = webhookRetryDelay(delivery.attempts, config.CHANNELS_WEBHOOK_RETRY_BASE_MS);
    await store.failWebhookDelivery({
      id: delivery.id,
      attempts: delivery.attempts,
      error,
      retryAt: giveUp ? null : new Date(Date.now() + delayMs),
    });
    metrics.webhookDeliveries.inc({ outcome: giveUp ? "gave_up" : "failed" });
    record(
      "error",
      giveUp
        ? `gave up after ${delivery.attempts} attempts: ${error}`
        : `attempt ${delivery.attempts} failed: ${error}; retry in ${Math.ceil(delayMs / 1000)} s`,
    );
  }

  async function drainDue() {
    for (let round = 0; round < MAX_ROUNDS && !stopping.signal.aborted; round++) {
      const due = await store.claimWebhookDeliveries({ now: new Date(), limit: BATCH, leaseMs });
      const results = await Promise.allSettled(due.map(deliver));
      for (const result of results) {
        if (result.status === "rejected")
          logger.warn(
            { err: result.reason },
            "recording a webhook delivery failed; it is retried after its lease",
          );
      }
      if (due.length < BATCH) return;
    }
  }

  /** How long to wait after a round: until the earliest row is due, at most CHANNELS_WEBHOOK_POLL_MS. */
  async function untilNextDue(): Promise<number> {
    const next = await store.nextWebhookAttemptAt();
    const dueIn = next === null ? Number.POSITIVE_INFINITY : next.getTime() - Date.now();
    return Math.max(0, Math.min(dueIn, config.CHANNELS_WEBHOOK_POLL_MS));
  }

  let timer: NodeJS.Timeout | undefined;
  /** Rows were queued during a round: its claim may have run before they committed. */
  let queuedDuringRound = false;
  let failedRounds = 0;

  const afterFailedRound = (error: unknown): number => {
    failedRounds += 1;
    const waitMs = Math.min(FAILED_ROUND_RETRY_MS * 2 ** (failedRounds - 1), config.CHANNELS_WEBHOOK_POLL_MS);
    logger.warn({ err: error, retryInMs: waitMs }, "webhook delivery round failed");
    return waitMs;
  };

  const tick = () => {
    if (stopping.signal.aborted) return;
    if (running) {
      queuedDuringRound = true;
      return;
    }
    clearTimeout(timer);
    queuedDuringRound = false;
    running = drainDue()
      .then(untilNextDue)
      .then((waitMs) => {
        failedRounds = 0;
        return waitMs;
      }, afterFailedRound)
      .then((waitMs) => {
        running = undefined;
        if (stopping.signal.aborted) return;
        timer = setTimeout(tick, queuedDuringRound ? 0 : waitMs);
        timer.unref();
      });
  };
  const stopWaking = store.onWebhookDeliveriesQueued(tick);
  tick();

  return async () => {
    stopWaking();
    clearTimeout(timer);
    stopping.abort();
    await running;
  };
}
