import { TRPCError } from "@trpc/server";
import type { PresenceEntry } from "@wedsync/bus";
import { type ChannelRow, type ChannelStore, type ChannelStores, WebhookLimitError } from "@wedsync/db";
import type { AuditTrail } from "./audit.ts";
import { ChannelCache } from "./channel-cache.ts";
import type { ChannelType, ParsedChannelName } from "./channel-name.ts";
import type { Config } from "./config.ts";
import type { ChannelEvent } from "./events.ts";
import type { LocalFanout } from "./fanout.ts";
import { type Identity, storeActorOf } from "./identity.ts";
import { type ChannelReset, messageId, parseMessageId, toChannelMessage } from "./message.ts";
import type { MessageQueue } from "./message-queue.ts";
import { ChannelGoneError, openChannelStream, type StreamSubscriber } from "./message-stream.ts";
import type { Metrics } from "./metrics.ts";
import { type Access, isAllowed, mayGrant, webhookMayPublish } from "./policy.ts";
import type { PresenceEvent, PresenceManager } from "./presence-manager.ts";
import type { RateLimits } from "./rate-limits.ts";
import type { OutboundSocket } from "./slow-consumer.ts";
import { SocketSlots } from "./socket-slots.ts";
import type { StopSignal } from "./stop-signal.ts";
import { Waiter } from "./waiter.ts";
import type { WebhookTargets } from "./webhook-url.ts";
import { generateWebhookSecret } from "./webhooks.ts";

export interface ChannelManagerDeps {
  stores: ChannelStores;
  /** The server's own view of the store (services.ts): channel heads, cleanup. */
  serviceStore: ChannelStore;
  queue: MessageQueue;
  fanout: LocalFanout;
  metrics: Metrics;
  audit: AuditTrail;
  presence: PresenceManager;
  limits: RateLimits;
  webhookTargets: WebhookTargets;
  config: Config;
}

/** Who did something, for audit rows and rate limits: a user, or a system such as `webhook:inbound`. */
type Actor = Pick<Identity, "sub">;

const MISSED_LIMIT = 500;
/** Bounds the deliveries one message can cause. */
const MAX_WEBHOOKS_PER_CHANNEL = 10;
const STREAM_PAGE = 500;
const INBOX_CAPACITY = 1_024;
/** Presence events kept for a watcher that is not reading; older ones are dropped. */
const PRESENCE_QUEUE = 1_000;

export function toChannelDto(row: ChannelRow) {
  const { id, name, type, scope, entity, entityId, createdBy, createdAt, metadata } = row;
  return { id, name, type, scope, entity, entityId, createdBy, createdAt, metadata };
}

/** Channel lifecycle, access and delivery. Every entry point authorizes from the name first. */
export class ChannelManager {
  private readonly slots: SocketSlots;

  private readonly channels: ChannelCache;
  private readonly heads: ChannelStore["channelHeads"];

  constructor(private readonly deps: ChannelManagerDeps) {
    this.slots = new SocketSlots(deps.config.CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION, () =>
      deps.metrics.rateLimited.inc(),
    );
    this.channels = new ChannelCache();
    this.heads = (channelIds) => deps.serviceStore.channelHeads(channelIds);
  }

  private storeOf(identity: Identity): ChannelStore {
    return storeOf(this.deps.stores, identity);
  }

  async createChannel(
    identity: Identity,
    parsed: ParsedChannelName,
    options: { type?: ChannelType; metadata?: Record<string, unknown> },
  ) {
    if (options.type !== undefined && options.type !== parsed.type) {
      throw new TRPCError({
        code: "BAD_REQUEST",
        message: `${parsed.scope}:${parsed.entity} channels are ${parsed.type}, not ${options.type}`,
      });
    }
    const store = this.storeOf(identity);
    const existing = await store.findChannel(parsed.name);
    await this.authorize(identity, parsed, "create", existing, "create");
    const { channel, created } = existing
      ? { channel: existing, created: false }
      : await store.upsertChannel({
          name: parsed.name,
          type: parsed.type,
          scope: parsed.scope,
          entity: parsed.entity,
          entityId: parsed.entityId,
          createdBy: identity.sub,
          metadata: options.metadata ?? {},
        });
    if (!channel) {
      // The name is taken by a channel the database keeps from this user: someone else's form response.
      this.audit(identity, "create", parsed.name, "denied", "no create access");
      throw new TRPCError({ code: "FORBIDDEN", message: `you may not create ${parsed.name}` });
    }
    // A concurrent create of a creator-owned channel by someone else must not hand it over.
    if (!created) await this.authorize(identity, parsed, "create", channel, "create");
    if (created) this.audit(identity, "create", parsed.name);
    this.channels.remember(channel);
    return toChannelDto(channel);
  }

  async subscribeToChannel(identity: Identity, parsed: ParsedChannelName, lastMessageId?: string) {
    await this.limited(identity, "subscribe", parsed.name, () =>
      this.deps.limits.subscribesPerUser(identity.sub),
    );
    // The cached row, as a broadcast uses: its lookup was a transaction of its own, two round trips
    // on Postgres, each a wait behind a fan-out turn on a busy instance.
    const cached = await this.resolve(identity, parsed, "read", "subscribe", true);
    const maxActive =
      identity.tier === "paid" ? this.deps.config.CHANNELS_TIER_PAID : this.deps.config.CHANNELS_TIER_FREE;
    const store = this.storeOf(identity);
    let channel = cached;
    // One transaction sets the cursor and reads what the client missed: under a fan-out load every
    // transaction may wait behind a broadcast's fan-out, so each one more was one more such wait.
    const result = await this.onCachedChannel(identity, store, parsed, "subscribe", cached, (row) => {
      channel = row;
      return store.subscribe({
        channelId: row.id,
        userId: identity.sub,
        fromSeq: lastMessageId === undefined ? null : this.seqOf(row, lastMessageId),
        maxActive,
        missedLimit: MISSED_LIMIT + 1,
        now: new Date(),
      });
    });
    if (!result.ok) {
      this.audit(identity, "subscribe", parsed.name, "denied", "tier limit");
      throw new TRPCError({
        code: "PRECONDITION_FAILED",
        message: `the ${identity.tier} tier allows ${maxActive} active channel subscriptions; unsubscribe from one first`,
      });
    }
    const cursor = result.subscription.cursorSeq;
    const missed = result.missed.map((row) => toChannelMessage(row, channel.name));
    // Messages after the cursor that retention already removed are reported, never skipped silently:
    // the first one retained after the cursor is not the next one (or none is, below the head).
    const oldestSeq = missed[0]?.seq ?? null;
    const lost = cursor < result.lastSeq && oldestSeq !== cursor + 1;
    const reset: ChannelReset | null = lost
      ? { type: "reset", channel: channel.name, reason: "retention", oldestSeq }
      : null;
    this.audit(identity, "subscribe", parsed.name);
    return {
      subscription: {
        channelName: channel.name,
        channelId: channel.id,
        cursorSeq: result.subscription.cursorSeq,
        /** Pass as channel.events' lastEventId to stream everything after the cursor. */
        resumeFrom: messageId(channel.id, cursor),
        subscribedAt: result.subscription.subscribedAt,
        activeSubscriptions: result.activeCount,
      },
      missed: missed.slice(0, MISSED_LIMIT),
      hasMore: missed.length > MISSED_LIMIT,
      reset,
    };
  }

  async unsubscribeFromChannel(identity: Identity, parsed: ParsedChannelName) {
    const channel = await this.resolve(identity, parsed, "read", "unsubscribe");
    const unsubscribed = await this.storeOf(identity).unsubscribe(channel.id, identity.sub);
    this.audit(identity, "unsubscribe", parsed.name);
    return { unsubscribed };
  }

  async broadcastToChannel(
    identity: Identity,
    parsed: ParsedChannelName,
    event: ChannelEvent,
    idempotencyKey: string | null,
  ) {
    const channel = await this.resolve(identity, parsed, "publish", "broadcast", true);
    return this.publish(identity, this.storeOf(identity), parsed, channel, event, idempotencyKey);
  }

  /**
   * A broadcast from an external system that proved it holds the inbound webhook secret (POST
   * /webhooks/inbound). Allowed by channel kind only (webhookMayPublish); then the same path as
   * channel.broadcast: rate limit, durable store, fan-out, outbound webhooks, audit.
   */
  async broadcastFromWebhook(
    senderId: string,
    parsed: ParsedChannelName,
    event: ChannelEvent,
    idempotencyKey: string | null,
  ) {
    const actor = { sub: senderId };
    if (!webhookMayPublish(parsed.address)) {
      this.audit(actor, "broadcast", parsed.name, "denied", "no webhook publish access");
      throw new TRPCError({
        code: "FORBIDDEN",
        message: "signed webhooks may publish to form:response and journey:milestone channels only",
      });
    }
    const store = this.deps.stores.as({ kind: "webhook", senderId });
    const channel = await this.channels.find(parsed.name, (name) => store.findChannel(name));
    if (!channel) throw this.notFound(actor, "broadcast", parsed.name);
    return this.publish(actor, store, parsed, channel, event, idempotencyKey);
  }

  /** Everything a broadcast does once its sender is authorized for the channel. */
  private async publish(
    identity: Actor,
    store: ChannelStore,
    parsed: ParsedChannelName,
    channel: ChannelRow,
    event: ChannelEvent,
    idempotencyKey: string | null,
  ) {
    // A retry of a stored broadcast is answered without spending the channel's budget.
    const retried =
      idempotencyKey === null ? undefined : await this.deps.queue.findRetried(store, channel, idempotencyKey);
    if (retried) {
      // The first attempt may have stored it and died (or lost Redis) before fanning it out: send
      // the frame again; subscribers that already have it drop it by seq.
      await this.deps.fanout.publish(channel.id, retried);
      this.audit(identity, "broadcast", parsed.name, "ok", "idempotent retry", { seq: retried.seq });
      return { id: retried.id, seq: retried.seq, duplicate: true };
    }
    // After authorization: outsiders must not be able to spend a channel's budget.
    await this.limited(identity, "broadcast", parsed.name, () =>
      this.deps.limits.broadcastsPerChannel(channel.id),
    );
    let target = channel;
    const storing = performance.now();
    const { message, duplicate } = await this.onCachedChannel(
      identity,
      store,
      parsed,
      "broadcast",
      channel,
      (row) => {
        target = row;
        return this.deps.queue.enqueueMessage(store, row, identity.sub, event, idempotencyKey);
      },
    );
    this.deps.metrics.storeWait.observe((performance.now() - storing) / 1000);
    if (!duplicate) this.deps.metrics.broadcasts.inc();
    // Stored is acknowledged. The answer waits neither for this instance's fan-out, unless the
    // channel is FANOUT_BACKLOG deliveries behind (fanout-passes.ts: a publisher must not outrun
    // it), nor for Redis to confirm the publish (its outcome changes nothing for the caller; a lost
    // live frame is recovered by subscribers from the store). A duplicate is sent again too, in case
    // the attempt that stored it never fanned it out.
    await this.deps.fanout.publish(target.id, message);
    this.audit(identity, "broadcast", parsed.name, "ok", duplicate ? "idempotent retry" : null, {
      seq: message.seq,
    });
    return { id: message.id, seq: message.seq, duplicate };
  }

  async getChannelSubscribers(identity: Identity, parsed: ParsedChannelName) {
    const channel = await this.resolve(identity, parsed, "read", "subscribers");
    const [rows, online] = await Promise.all([
      this.storeOf(identity).listSubscribers(channel.id),
      // Without the bus nobody is known to be online; the durable subscribers are still listed.
      this.deps.presence.list(channel.id).catch(() => []),
    ]);
    const onlineUsers = new Set(online.map((user) => user.userId));
    return rows.map((row) => ({
      userId: row.userId,
      subscribedAt: row.subscribedAt,
      online: onlineUsers.has(row.userId),
    }));
  }

  async listChannels(identity: Identity) {
    const rows = await this.storeOf(identity).listUserChannels(identity.sub, new Date());
    return rows.map((row) => ({
      ...toChannelDto(row.channel),
      lastSeq: row.channel.lastSeq,
      unread: row.unread,
    }));
  }

  /**
   * Authorizes and finds the channel before the stream starts, so errors reach the client as errors.
   * A caller the name admits gets the cached row: a connect storm then costs no read as each user, and
   * streamEvents finds out when the row is stale. Anyone else is checked against the stored row (its
   * creator, their grant), which must be current. `fromStore` skips the cache.
   */
  async openStream(
    identity: Identity,
    parsed: ParsedChannelName,
    lastEventId: string | undefined,
    fromStore = false,
  ) {
    const channel = await this.resolve(identity, parsed, "read", "events", !fromStore);
    const afterSeq = lastEventId === undefined ? null : this.seqOf(channel, lastEventId, true);
    // The client's state belongs to another epoch (or to nothing): it must be told to refetch.
    const otherEpoch = lastEventId !== undefined && parseMessageId(lastEventId)?.channelId !== channel.id;
    return { channel, afterSeq, otherEpoch, lastEventId };
  }

  /**
   * Resolves once the stream listens (see openChannelStream); iterate the result to receive. When the
   * channel turns out to be gone (a stale cached row), the name is resolved again from the store:
   * NOT_FOUND if it is really gone, else the stream listens to the channel that now has the name.
   */
  async streamEvents(
    identity: Identity,
    parsed: ParsedChannelName,
    opened: Awaited<ReturnType<ChannelManager["openStream"]>>,
    signal: StopSignal,
    socket?: OutboundSocket,
  ) {
    try {
      return await this.listen(identity, parsed, opened, signal, socket);
    } catch (error) {
      if (!(error instanceof ChannelGoneError)) throw error;
    }
    this.channels.forget(parsed.name);
    const fresh = await this.openStream(identity, parsed, opened.lastEventId, true);
    this.channels.remember(fresh.channel);
    return this.listen(identity, parsed, fresh, signal, socket).catch((error) => {
      // Deleted again since the store answered: gone is gone.
      if (error instanceof ChannelGoneError) {
        this.channels.forget(parsed.name);
        throw this.notFound(identity, "events", parsed.name);
      }
      throw error;
    });
  }

  private async listen(
    identity: Identity,
    parsed: ParsedChannelName,
    opened: Awaited<ReturnType<ChannelManager["openStream"]>>,
    signal: StopSignal,
    socket: OutboundSocket | undefined,
  ) {
    const { channel, afterSeq, otherEpoch } = opened;
    this.slots.take(socket);
    let presence: PresenceEntry;
    try {
      presence = await this.deps.presence.join(channel.id, channel.name, identity.sub);
    } catch (error) {
      this.slots.release(socket);
      throw error;
    }
    const subscriber = new EventsSubscriber(
      this.deps,
      this.slots,
      identity,
      parsed,
      channel,
      socket,
      presence,
    );
    return openChannelStream({
      subscriber,
      channel,
      afterSeq,
      otherEpoch,
      heads: this.heads,
      fanout: this.deps.fanout,
      metrics: this.deps.metrics,
      signal,
      socket,
      sendLimits: {
        maxBufferedBytes: this.deps.config.CHANNELS_MAX_BUFFERED_BYTES,
        timeoutMs: this.deps.config.CHANNELS_SLOW_CONSUMER_TIMEOUT_MS,
      },
      inboxCapacity: INBOX_CAPACITY,
      pageSize: STREAM_PAGE,
    }).catch((error) => {
      subscriber.end();
      throw error;
    });
  }

  /** Users online in the channel across instances (read access required). */
  async listPresence(identity: Identity, parsed: ParsedChannelName) {
    const channel = await this.resolve(identity, parsed, "read", "presence");
    return this.deps.presence.list(channel.id);
  }

  /** Join/leave events of the channel (read access required); iterate the result. */
  async watchPresence(
    identity: Identity,
    parsed: ParsedChannelName,
    signal: AbortSignal,
    socket?: OutboundSocket,
  ) {
    const channel = await this.resolve(identity, parsed, "read", "presence");
    this.slots.take(socket);
    const queue: PresenceEvent[] = [];
    const waiter = new Waiter();
    let revoked = false;
    const stopRevocations = this.deps.fanout.watchRevocations(channel.id, identity.sub, () => {
      revoked = true;
      waiter.wake();
    });
    const stop = await this.deps.presence
      .watch(channel.id, channel.name, (event) => {
        if (queue.length >= PRESENCE_QUEUE) queue.shift();
        queue.push(event);
        waiter.wake();
      })
      .catch((error) => {
        stopRevocations();
        this.slots.release(socket);
        throw error;
      });
    // The generator below is a plain function: it reads these, not `this`.
    const { stores } = this.deps;
    const { slots } = this;
    return (async function* () {
      try {
        while (!signal.aborted) {
          if (revoked) {
            revoked = false;
            if (!(await stillAllowed(storeOf(stores, identity), identity, parsed, channel))) {
              throw new TRPCError({
                code: "FORBIDDEN",
                message: `your access to ${channel.name} was revoked`,
              });
            }
          }
          const event = queue.shift();
          if (event) {
            yield event;
            continue;
          }
          await waiter.wait(signal);
        }
      } finally {
        stop();
        stopRevocations();
        slots.release(socket);
      }
    })();
  }

  /** Shares the channel with a user beyond its name's audience. Owners only. */
  async grantAccess(identity: Identity, parsed: ParsedChannelName, userId: string) {
    const channel = await this.resolveOwned(identity, parsed, "grant");
    const granted = await this.storeOf(identity).grant(channel.id, userId, identity.sub);
    this.audit(identity, "grant", parsed.name, "ok", null, { userId });
    return { granted };
  }

  /** Takes a grant back; the user's live streams on every instance end unless the name still admits them. */
  async revokeAccess(identity: Identity, parsed: ParsedChannelName, userId: string) {
    const channel = await this.resolveOwned(identity, parsed, "revoke");
    const revoked = await this.storeOf(identity).revoke(channel.id, userId);
    await this.deps.fanout.revoke(channel.id, userId);
    this.audit(identity, "revoke", parsed.name, "ok", null, { userId });
    return { revoked };
  }

  /**
   * Registers an outbound webhook: every message stored on the channel from now on is POSTed, signed with
   * the secret, to the URL (see the delivery worker). Owners only, like grants; the secret is returned once.
   * A URL whose host is or resolves to a non-public address is refused (a host that does not resolve yet
   * is not: every delivery checks again).
   */
  async addWebhook(identity: Identity, parsed: ParsedChannelName, url: string, secret: string | undefined) {
    const channel = await this.resolveOwned(identity, parsed, "webhook.add", "add webhooks");
    const target = new URL(url);
    // Bounded like a delivery: a slow DNS answer must not hold the mutation, and deliveries check again.
    const check = await this.deps.webhookTargets.check(
      target,
      AbortSignal.timeout(this.deps.config.CHANNELS_WEBHOOK_TIMEOUT_MS),
    );
    if (!check.ok && check.refused) {
      this.audit(identity, "webhook.add", parsed.name, "denied", "non-public address", {
        origin: target.origin,
        refusal: check.reason,
      });
      throw new TRPCError({ code: "BAD_REQUEST", message: check.reason });
    }
    const row = await this.storeOf(identity)
      .addWebhook({
        channelId: channel.id,
        url,
        secret: secret ?? generateWebhookSecret(),
        createdBy: identity.sub,
        maxPerChannel: MAX_WEBHOOKS_PER_CHANNEL,
      })
      .catch((error: unknown) => {
        if (!(error instanceof WebhookLimitError)) throw error;
        this.audit(identity, "webhook.add", parsed.name, "denied", "webhook limit");
        throw new TRPCError({ code: "PRECONDITION_FAILED", message: error.message });
      });
    // The origin only: a path or query may carry a receiver's own token.
    this.audit(identity, "webhook.add", parsed.name, "ok", null, {
      webhookId: row.id,
      origin: new URL(row.url).origin,
    });
    return { id: row.id, url: row.url, secret: row.secret, createdAt: row.createdAt };
  }

  /** Stops deliveries to a webhook, including pending retries. Owners only. */
  async removeWebhook(identity: Identity, parsed: ParsedChannelName, webhookId: string) {
    const channel = await this.resolveOwned(identity, parsed, "webhook.remove", "remove webhooks");
    const removed = await this.storeOf(identity).removeWebhook(channel.id, webhookId);
    const reason = removed ? null : "no such webhook";
    this.audit(identity, "webhook.remove", parsed.name, "ok", reason, { webhookId });
    return { removed };
  }

  /** The channel's webhooks without their secrets. Owners only. */
  async listWebhooks(identity: Identity, parsed: ParsedChannelName) {
    const channel = await this.resolveOwned(identity, parsed, "webhook.list", "list webhooks");
    const rows = await this.storeOf(identity).listWebhooks(channel.id);
    return rows.map(({ id, url, createdBy, createdAt }) => ({ id, url, createdBy, createdAt }));
  }

  /**
   * How many channels went; null when another instance is cleaning up right now. Every instance
   * hears which (LocalFanout.channelsGone), so none starts a new stream on a deleted channel.
   */
  async cleanupInactiveChannels(now = new Date()): Promise<number | null> {
    const ids = await this.deps.serviceStore.deleteInactiveChannels(
      new Date(now.getTime() - this.deps.config.CHANNELS_CHANNEL_IDLE),
    );
    if (ids === null) return null;
    if (ids.length > 0) await this.deps.fanout.channelsGone(ids).catch(() => {});
    return ids.length;
  }

  /**
   * The seq a message id points at in this channel. An id from another epoch of the channel (it was
   * deleted and recreated) means "before everything": the stream announces a `reset` ("unknown"), then
   * replays this epoch from its start, reporting what retention took.
   */
  private seqOf(channel: ChannelRow, id: string, allowOtherEpoch = false): number {
    const parsed = parseMessageId(id);
    if (!parsed) throw new TRPCError({ code: "BAD_REQUEST", message: "not a message id of this service" });
    if (parsed.channelId === channel.id) return parsed.seq;
    if (allowOtherEpoch) return 0;
    throw new TRPCError({ code: "BAD_REQUEST", message: "that message id belongs to another channel" });
  }

  /**
   * FORBIDDEN for outsiders whether or not the channel exists; NOT_FOUND only for would-be members.
   * `cached` lets callers the name admits take the row from the cache, which may hold a row cleanup
   * has since deleted (or replaced): the broadcast path detects it on write, a stream on its head
   * read. Anyone else (a grantee, a form's creator) is judged on the row as the store has it now: a
   * stale row's id and creator would refuse them wrongly.
   */
  private async resolve(
    identity: Identity,
    parsed: ParsedChannelName,
    access: Access,
    action: string,
    cached = false,
  ) {
    const byName = isAllowed(identity, parsed.address, access);
    const channel =
      cached && byName
        ? await this.channels.find(parsed.name, (name) => this.storeOf(identity).findChannel(name))
        : await this.storeOf(identity).findChannel(parsed.name);
    if (!byName) await this.authorize(identity, parsed, access, channel ?? null, action);
    if (!channel) throw this.notFound(identity, action, parsed.name);
    return channel;
  }

  /**
   * Runs `attempt` on a row from the channel cache. When it fails, the row may be gone (cleanup) or
   * replaced (deleted and created again elsewhere): if the name now names another channel, the cache
   * learns it and `attempt` runs once more on that one; if none, NOT_FOUND; if the same, its error.
   */
  private async onCachedChannel<T>(
    identity: Actor,
    store: ChannelStore,
    parsed: ParsedChannelName,
    action: string,
    cached: ChannelRow,
    attempt: (channel: ChannelRow) => Promise<T>,
  ): Promise<T> {
    try {
      return await attempt(cached);
    } catch (error) {
      const fresh = await store.findChannel(parsed.name);
      if (fresh?.id === cached.id) throw error;
      this.channels.forget(parsed.name);
      if (!fresh) throw this.notFound(identity, action, parsed.name);
      this.channels.remember(fresh);
      return attempt(fresh);
    }
  }

  /** NOT_FOUND (audited), for callers the channel's absence may be told to. */
  private notFound(identity: Actor, action: string, channelName: string) {
    this.audit(identity, action, channelName, "denied", "not found");
    return new TRPCError({ code: "NOT_FOUND", message: `channel ${channelName} does not exist` });
  }

  /** For grant/revoke: owning members get NOT_FOUND for a missing channel, everyone else FORBIDDEN. */
  private async resolveOwned(
    identity: Identity,
    parsed: ParsedChannelName,
    action: string,
    what = `${action} access`,
  ) {
    const channel = await this.storeOf(identity).findChannel(parsed.name);
    const owner = mayGrant(identity, parsed.address, channel?.createdBy ?? "");
    if (!owner) {
      this.audit(identity, action, parsed.name, "denied", "not an owner");
      throw new TRPCError({
        code: "FORBIDDEN",
        message: `only the owners of ${parsed.name} may ${what}`,
      });
    }
    if (!channel) throw this.notFound(identity, action, parsed.name);
    return channel;
  }

  private async limited(identity: Actor, action: string, channelName: string, consume: () => Promise<void>) {
    try {
      await consume();
    } catch (error) {
      this.deps.metrics.rateLimited.inc();
      this.audit(identity, action, channelName, "denied", "rate limit");
      throw error;
    }
  }

  /**
   * Allows or throws FORBIDDEN (audited). `channel` undefined means "not looked up" (name and token
   * decide); null means "looked up, does not exist" (only creating is possible then).
   */
  private async authorize(
    identity: Identity,
    parsed: ParsedChannelName,
    access: Access,
    channel: ChannelRow | null | undefined,
    action: string,
  ) {
    const facts = channel
      ? {
          createdBy: channel.createdBy,
          granted: await this.storeOf(identity).hasGrant(channel.id, identity.sub),
        }
      : undefined;
    const allowed =
      channel === null && access !== "create" ? false : isAllowed(identity, parsed.address, access, facts);
    if (allowed) return;
    this.audit(identity, action, parsed.name, "denied", `no ${access} access`);
    throw new TRPCError({ code: "FORBIDDEN", message: `you may not ${access} ${parsed.name}` });
  }

  private audit(
    identity: Actor,
    action: string,
    channelName: string,
    outcome: "ok" | "denied" = "ok",
    reason: string | null = null,
    detail: Record<string, unknown> = {},
  ) {
    this.deps.audit.record({ actorId: identity.sub, action, channelName, outcome, reason, detail });
  }
}

/** The store as this user sees it: the database's row level security applies to all it does. */
function storeOf(stores: ChannelStores, identity: Identity): ChannelStore {
  return stores.as(storeActorOf(identity));
}

/** Whether a live stream may go on after a revocation reached it (the name may still admit the user). */
async function stillAllowed(
  store: ChannelStore,
  identity: Identity,
  parsed: ParsedChannelName,
  channel: ChannelRow,
) {
  return isAllowed(identity, parsed.address, "read", {
    createdBy: channel.createdBy,
    granted: await store.hasGrant(channel.id, identity.sub),
  });
}

/**
 * A channel.events stream's subscriber, holding what ends with the stream: its slot on the socket
 * and its presence in the channel. An object rather than closures over `listen`: every subscribed
 * connection keeps one, and the five closures and three contexts it replaces were ~0.5 KiB of what
 * the connection kept.
 */
class EventsSubscriber implements StreamSubscriber {
  private ended = false;

  constructor(
    private readonly deps: Pick<ChannelManagerDeps, "stores" | "presence">,
    private readonly slots: SocketSlots,
    private readonly identity: Identity,
    private readonly parsed: ParsedChannelName,
    private readonly channel: ChannelRow,
    private readonly socket: OutboundSocket | undefined,
    private readonly presence: PresenceEntry,
  ) {}

  get userId() {
    return this.identity.sub;
  }

  store() {
    return storeOf(this.deps.stores, this.identity);
  }

  stillAllowed() {
    return stillAllowed(this.store(), this.identity, this.parsed, this.channel);
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    this.slots.release(this.socket);
    void this.deps.presence.leave(this.channel.id, this.presence).catch(() => {});
  }
}
