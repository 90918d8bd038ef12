import { TRPCClientError, type TRPCLink } from "@trpc/client";
import type { AnyTRPCRouter } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import { fromWire, toWire } from "./superjson-wire.ts";
import type { SocketCall, SubscriptionConnection } from "./ws-connection.ts";

/**
 * Queries and mutations over the client's WebSocket (the `calls: "socket"` option), as tRPC's wsLink
 * sends them: `{ id, method, params: { path, input } }`, answered by one `data` or error frame. Each
 * call is sent once; a socket that closes first fails it (SubscriptionConnection.call).
 */
export function socketCallsLink<TRouter extends AnyTRPCRouter>(
  connection: SubscriptionConnection,
): TRPCLink<TRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        const { signal } = op;
        // Settled, aborted or no longer wanted: an answer that comes anyway goes nowhere.
        let done = false;
        const finish = () => {
          if (done) return false;
          done = true;
          signal?.removeEventListener("abort", onAbort);
          return true;
        };
        const call: SocketCall = {
          request: (id) => ({ id, method: op.type, params: { path: op.path, input: toWire(op.input) } }),
          answer: (frame) => {
            if (!finish()) return;
            if (frame.error !== undefined) {
              observer.error(
                TRPCClientError.from<TRouter>({ ...frame, error: fromWire(frame.error) } as object),
              );
              return;
            }
            observer.next({ result: { type: "data", data: fromWire(frame.result?.data) } });
            observer.complete();
          },
          fail: (error) => {
            if (finish()) observer.error(error as TRPCClientError<TRouter>);
          },
        };
        // As with tRPC's HTTP links, an aborted call fails; one not sent yet never will be.
        const onAbort = () => {
          if (!finish()) return;
          connection.forgetCall(call);
          const cause = signal?.reason instanceof Error ? signal.reason : undefined;
          observer.error(new TRPCClientError<TRouter>("The call was aborted", { cause }));
        };
        if (signal?.aborted) {
          onAbort();
          return () => {};
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        connection.call(call);
        return () => {
          if (finish()) connection.forgetCall(call);
        };
      });
}
