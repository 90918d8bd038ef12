import { initTRPC, TRPCError } from "@trpc/server";
import type { Identity } from "../identity.ts";
import { RateLimitedError } from "../rate-limits.ts";
import type { ChannelServices } from "../services.ts";
import type { OutboundSocket } from "../slow-consumer.ts";
import { channelsTransformer, HostileInput } from "../wire-format.ts";

export interface Context {
  /** Null when the caller sent no token or a bad one: procedures then answer UNAUTHORIZED. */
  identity: Identity | null;
  /** Why the token was refused, for the UNAUTHORIZED message. */
  authError?: string;
  services: ChannelServices;
  /** The WebSocket the call arrived on (absent over HTTP): streams watch its send buffer. */
  socket?: OutboundSocket;
}

const t = initTRPC.context<Context>().create({
  transformer: channelsTransformer,
  // Stack traces go to the server log, never to clients.
  isDev: false,
  errorFormatter: ({ shape, error }) => {
    // A fault's own text (a driver's message, a hostname) is for the server log, not for clients.
    if (error.code === "INTERNAL_SERVER_ERROR")
      return { ...shape, message: "internal error: it has been logged" };
    return error.cause instanceof RateLimitedError
      ? { ...shape, data: { ...shape.data, retryAfterMs: error.cause.retryAfterMs } }
      : shape;
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** A procedure's context once authedProcedure has let the call through. */
export type AuthedContext = Context & { identity: Identity };

/** authedProcedure's first check: the caller's identity, or UNAUTHORIZED. */
export function requireIdentity(ctx: Context): Identity {
  if (!ctx.identity) {
    throw new TRPCError({ code: "UNAUTHORIZED", message: ctx.authError ?? "a valid token is required" });
  }
  return ctx.identity;
}

/** authedProcedure's second check, on the input as the transformer read it. */
export function refuseHostile(rawInput: unknown) {
  if (rawInput instanceof HostileInput)
    throw new TRPCError({ code: "BAD_REQUEST", message: rawInput.reason });
}

/**
 * The caller holds a valid token and sent no hostile input. Mutations are counted so that a draining
 * instance finishes what it has accepted. One middleware, not two: every layer of tRPC's chain copies
 * the call's options, and this one runs on every call.
 */
export const authedProcedure = t.procedure.use(({ ctx, type, next, getRawInput }) => {
  const call = async () => {
    const identity = requireIdentity(ctx);
    refuseHostile(await getRawInput());
    return next({ ctx: { identity } });
  };
  return type === "mutation" ? ctx.services.inflight.run(call) : call();
});

export const adminProcedure = authedProcedure.use(({ ctx, next }) => {
  if (ctx.identity.role !== "admin") throw new TRPCError({ code: "FORBIDDEN", message: "admins only" });
  return next();
});
