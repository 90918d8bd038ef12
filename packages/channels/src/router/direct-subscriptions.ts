import { getParseFn, TRPCError } from "@trpc/server/unstable-core-do-not-import";
import type { z } from "zod";
import type { StopSignal } from "../stop-signal.ts";
import { eventsInputSchema, openEvents } from "./channel-router.ts";
import { type AuthedContext, type Context, refuseHostile, requireIdentity } from "./trpc.ts";

/** Opens a subscription from the connection's context and the input as the transformer read it. */
export type DirectSubscription = (ctx: Context, rawInput: unknown, signal: StopSignal) => Promise<unknown>;

/**
 * Subscriptions a WebSocket adapter may open without tRPC's procedure runner, by path. Each runs what
 * its procedure runs, in the same order and with the same errors: authedProcedure's checks, the
 * procedure's own input schema through tRPC's parser (a refusal wrapped as tRPC's input middleware
 * wraps it), then the procedure's resolver. The runner around them (a layer per middleware, each
 * copying the call's options, and a promise per layer) is skipped: in the bench's connect storms it
 * cost about a sixth of the server's CPU per connect (0.315 against 0.265 ms, medians of eight
 * alternating storms of 2,000) and 15 of the 63 KB allocated per connect.
 *
 * Only channel.events: every client opens one when it connects.
 */
export const directSubscriptions: ReadonlyMap<string, DirectSubscription> = new Map([
  ["channel.events", direct(eventsInputSchema, openEvents)],
]);

function direct<TInput>(
  schema: z.ZodType<TInput>,
  resolve: (options: { ctx: AuthedContext; input: TInput; signal: StopSignal }) => Promise<unknown>,
): DirectSubscription {
  const parse = getParseFn(schema);
  return async (ctx, rawInput, signal) => {
    const identity = requireIdentity(ctx);
    refuseHostile(rawInput);
    let input: TInput;
    try {
      input = (await parse(rawInput)) as TInput;
    } catch (cause) {
      throw new TRPCError({ code: "BAD_REQUEST", cause });
    }
    return resolve({ ctx: { ...ctx, identity }, input, signal });
  };
}
