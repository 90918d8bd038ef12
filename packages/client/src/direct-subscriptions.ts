import { type CreateTRPCClientOptions, TRPCUntypedClient } from "@trpc/client";
import type { AnyTRPCRouter } from "@trpc/server";
import type { Unsubscribable } from "@trpc/server/observable";
import type { SubscriptionConnection } from "./ws-connection.ts";
import { type RetryPolicy, type SubscriptionHandlers, SubscriptionStream } from "./ws-subscription.ts";

export interface SubscriptionOptions {
  connection: SubscriptionConnection;
  /** Whether a subscription the server failed with this error is sent again. */
  retry: RetryPolicy;
  retryDelayMs: (attempt: number) => number;
}

/**
 * tRPC's untyped client, except that subscriptions go straight to the shared socket and each event
 * straight to the caller's handlers; queries and mutations still go through the links. tRPC would
 * pass every event through its link chain, a `share()` that copies its set of observers per event
 * and its own observer: about 2.7 µs of the ~19 µs of CPU a client spent per received message in a
 * profile of 500 subscribers. It also stands in for tRPC's wsLink + retryLink, whose per-event
 * observable layers, copies and timer resets cost more than the JSON parse itself.
 */
export class DirectSubscriptionsClient<TRouter extends AnyTRPCRouter> extends TRPCUntypedClient<TRouter> {
  constructor(
    clientOptions: CreateTRPCClientOptions<TRouter>,
    private readonly subscriptions: SubscriptionOptions,
  ) {
    super(clientOptions);
  }

  override subscription(path: string, input: unknown, handlers: SubscriptionHandlers): Unsubscribable {
    const { connection, retry, retryDelayMs } = this.subscriptions;
    const stream = new SubscriptionStream<TRouter>(path, input, handlers, connection, retry, retryDelayMs);
    stream.start();
    return stream;
  }
}
