import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { channelNameSchema, parseChannelName, segmentSchema } from "../channel-name.ts";
import { eventSchema } from "../events.ts";
import { identityClaimsSchema } from "../identity.ts";
import type { StopSignal } from "../stop-signal.ts";
import { webhookSecretSchema, webhookUrlSchema } from "../webhooks.ts";
import { type AuthedContext, authedProcedure, router } from "./trpc.ts";

const messageIdSchema = z.string().min(1).max(128);
const METADATA_MAX_BYTES = 4_096;

const metadataSchema = z
  .record(z.string().max(64), z.json())
  .refine(
    (m) => JSON.stringify(m).length <= METADATA_MAX_BYTES,
    `metadata is at most ${METADATA_MAX_BYTES} bytes`,
  );

const channelInput = z.object({ channelName: channelNameSchema });

/** channel.events' input. */
export const eventsInputSchema = z.object({
  channelName: channelNameSchema,
  lastEventId: messageIdSchema.nullish(),
});

/**
 * channel.events' resolver (see direct-subscriptions.ts). The stream is opened before it returns,
 * which is awaited before the client is told `started`: access errors arrive as errors, and nothing
 * published after the client has seen `started` is missed. It returns the stream itself, not an async
 * generator around it: a second generator layer would be kept (with its pending request and
 * promises) for every subscribed connection.
 */
export async function openEvents({
  ctx,
  input,
  signal,
}: {
  ctx: AuthedContext;
  input: z.output<typeof eventsInputSchema>;
  signal: StopSignal | undefined;
}) {
  const { manager } = ctx.services;
  const opened = await manager.openStream(ctx.identity, input.channelName, input.lastEventId ?? undefined);
  const abort = signal ?? new AbortController().signal;
  return manager.streamEvents(ctx.identity, input.channelName, opened, abort, ctx.socket);
}

const userIdSchema = identityClaimsSchema.shape.sub;

/** channel.broadcast's input; POST /webhooks/inbound takes the same body. */
export const broadcastInputSchema = z.intersection(
  z.object({ channelName: channelNameSchema, idempotencyKey: z.string().min(1).max(128).optional() }),
  eventSchema,
);

/** BAD_REQUEST when the payload's JSON is over CHANNELS_MAX_PAYLOAD_BYTES. */
export function assertPayloadSize(payload: unknown, max: number) {
  const bytes = Buffer.byteLength(JSON.stringify(payload));
  if (bytes > max) {
    throw new TRPCError({ code: "BAD_REQUEST", message: `payload is ${bytes} bytes; the limit is ${max}` });
  }
}

export const channelRouter = router({
  create: authedProcedure
    .input(
      z.object({
        scope: segmentSchema,
        entity: segmentSchema,
        entityId: z.string().max(129),
        type: z.enum(["private", "shared", "broadcast"]).optional(),
        metadata: metadataSchema.optional(),
      }),
    )
    .mutation(({ ctx, input }) => {
      const parsed = parseChannelName(`${input.scope}:${input.entity}:${input.entityId}`);
      if ("error" in parsed) throw new TRPCError({ code: "BAD_REQUEST", message: parsed.error });
      return ctx.services.manager.createChannel(ctx.identity, parsed, input);
    }),

  subscribe: authedProcedure
    .input(z.object({ channelName: channelNameSchema, lastMessageId: messageIdSchema.optional() }))
    .mutation(({ ctx, input }) =>
      ctx.services.manager.subscribeToChannel(ctx.identity, input.channelName, input.lastMessageId),
    ),

  unsubscribe: authedProcedure
    .input(channelInput)
    .mutation(({ ctx, input }) =>
      ctx.services.manager.unsubscribeFromChannel(ctx.identity, input.channelName),
    ),

  broadcast: authedProcedure.input(broadcastInputSchema).mutation(({ ctx, input }) => {
    const { channelName, idempotencyKey, ...event } = input;
    assertPayloadSize(event.payload, ctx.services.config.CHANNELS_MAX_PAYLOAD_BYTES);
    return ctx.services.manager.broadcastToChannel(ctx.identity, channelName, event, idempotencyKey ?? null);
  }),

  subscribers: authedProcedure
    .input(channelInput)
    .query(({ ctx, input }) => ctx.services.manager.getChannelSubscribers(ctx.identity, input.channelName)),

  grant: authedProcedure
    .input(z.object({ channelName: channelNameSchema, userId: userIdSchema }))
    .mutation(({ ctx, input }) =>
      ctx.services.manager.grantAccess(ctx.identity, input.channelName, input.userId),
    ),

  revoke: authedProcedure
    .input(z.object({ channelName: channelNameSchema, userId: userIdSchema }))
    .mutation(({ ctx, input }) =>
      ctx.services.manager.revokeAccess(ctx.identity, input.channelName, input.userId),
    ),

  /** Outbound webhooks: the channel's messages POSTed, signed, to URLs its owners register. */
  webhooks: router({
    add: authedProcedure
      .input(
        z.object({
          channelName: channelNameSchema,
          url: webhookUrlSchema,
          secret: webhookSecretSchema.optional(),
        }),
      )
      .mutation(({ ctx, input }) =>
        ctx.services.manager.addWebhook(ctx.identity, input.channelName, input.url, input.secret),
      ),
    remove: authedProcedure
      .input(z.object({ channelName: channelNameSchema, id: z.uuid() }))
      .mutation(({ ctx, input }) =>
        ctx.services.manager.removeWebhook(ctx.identity, input.channelName, input.id),
      ),
    list: authedProcedure
      .input(channelInput)
      .query(({ ctx, input }) => ctx.services.manager.listWebhooks(ctx.identity, input.channelName)),
  }),

  list: authedProcedure.query(({ ctx }) => ctx.services.manager.listChannels(ctx.identity)),

  events: authedProcedure.input(eventsInputSchema).subscription(openEvents),
});
