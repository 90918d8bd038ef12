import { z } from "zod";
import { channelNameSchema } from "../channel-name.ts";
import { authedProcedure, router } from "./trpc.ts";

const channelInput = z.object({ channelName: channelNameSchema });

export const presenceRouter = router({
  /** Users online in a channel on any instance. */
  list: authedProcedure
    .input(channelInput)
    .query(({ ctx, input }) => ctx.services.manager.listPresence(ctx.identity, input.channelName)),

  /** Join/leave events as they happen; after a reconnect, call presence.list for the current state. */
  events: authedProcedure
    .input(channelInput)
    .use(async ({ ctx, input, signal, next }) => {
      const abort = signal ?? new AbortController().signal;
      const events = await ctx.services.manager.watchPresence(
        ctx.identity,
        input.channelName,
        abort,
        ctx.socket,
      );
      return next({ ctx: { events } });
    })
    .subscription(async function* ({ ctx }) {
      yield* ctx.events;
    }),
});
