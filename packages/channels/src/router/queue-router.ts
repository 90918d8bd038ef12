import { z } from "zod";
import { storeActorOf } from "../identity.ts";
import { authedProcedure, router } from "./trpc.ts";

export const queueRouter = router({
  pending: authedProcedure
    .input(z.object({ limit: z.number().int().min(1).max(1_000).default(200) }).default({ limit: 200 }))
    .query(({ ctx, input }) =>
      ctx.services.queue.dequeueMessagesForUser(
        ctx.services.stores.as(storeActorOf(ctx.identity)),
        ctx.identity.sub,
        input.limit,
      ),
    ),

  ack: authedProcedure
    .input(z.object({ messageIds: z.array(z.string().min(1).max(128)).min(1).max(1_000) }))
    .mutation(async ({ ctx, input }) => ({
      acked: await ctx.services.queue.markMessageDelivered(
        ctx.services.stores.as(storeActorOf(ctx.identity)),
        ctx.identity.sub,
        input.messageIds,
      ),
    })),
});
