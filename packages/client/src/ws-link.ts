import { TRPCClientError, type TRPCLink } from "@trpc/client";
import type { AnyTRPCRouter } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import type { SubscriptionConnection } from "./ws-connection.ts";
import { type RetryPolicy, SubscriptionStream } from "./ws-subscription.ts";

export interface SubscriptionLinkOptions {
  connection: SubscriptionConnection;
  /** Whether a subscription the server failed with this error is sent again. */
  retry: RetryPolicy;
  retryDelayMs: (attempt: number) => number;
}

/**
 * The terminating link for subscriptions: each one goes straight to the shared socket, and each
 * event goes straight back to the caller's observer. It replaces tRPC's wsLink + retryLink, whose
 * per-event observable layers, copies and timer resets cost more CPU than the JSON parse itself.
 */
export function subscriptionLink<TRouter extends AnyTRPCRouter>(
  options: SubscriptionLinkOptions,
): TRPCLink<TRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        if (op.type !== "subscription") {
          observer.error(new TRPCClientError(`${op.type} "${op.path}" cannot go over the subscription link`));
          return;
        }
        const stream = new SubscriptionStream<TRouter>(
          op,
          observer,
          options.connection,
          options.retry,
          options.retryDelayMs,
        );
        const signal = op.signal;
        const onAbort = () => {
          stream.stop();
          observer.complete();
        };
        if (signal?.aborted) {
          observer.complete();
          return;
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        stream.start();
        return () => {
          signal?.removeEventListener("abort", onAbort);
          stream.stop();
        };
      });
}
