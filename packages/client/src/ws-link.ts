import type { TRPCLink } from "@trpc/client";
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
 * Takes subscriptions to the shared socket and passes every other operation to the next link. Each
 * event goes straight back to the caller's observer. It replaces tRPC's wsLink + retryLink (and
 * the splitLink in front of them), whose per-event observable layers, copies and timer resets
 * cost more CPU than the JSON parse itself.
 */
export function subscriptionLink<TRouter extends AnyTRPCRouter>(
  options: SubscriptionLinkOptions,
): TRPCLink<TRouter> {
  return () =>
    ({ op, next }) => {
      if (op.type !== "subscription") return next(op);
      return observable((observer) => {
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
    };
}
