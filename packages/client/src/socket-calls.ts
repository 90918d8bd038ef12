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
        let settled = false;
        const call: SocketCall = {
          request: (id) => ({ id, method: op.type, params: { path: op.path, input: toWire(op.input) } }),
          answer: (frame) => {
            settled = true;
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
            settled = true;
            observer.error(error as TRPCClientError<TRouter>);
          },
        };
        connection.call(call);
        return () => {
          if (!settled) connection.forgetCall(call);
        };
      });
}
