import { type Operation, type OperationResultObserver, TRPCClientError } from "@trpc/client";
import type { AnyTRPCRouter } from "@trpc/server";
import { fromCompact } from "@wedsync/channels/compact-frame";
import { fromWire, toWire } from "./superjson-wire.ts";
import type {
  ConnectionState,
  ConnectionStream,
  ResponseFrame,
  SubscriptionConnection,
} from "./ws-connection.ts";

/** Whether a subscription that failed with this error should be sent again (attempt counts from 1). */
export type RetryPolicy = (error: TRPCClientError<AnyTRPCRouter>, attempt: number) => boolean;

/**
 * One `subscription` operation on the shared socket: what it sends (its input, serialized once,
 * and its resume point) and what it does with each response. Every tracked id it receives becomes
 * its lastEventId, so a re-send after a reconnect or a retry resumes right after the last event
 * delivered: no gap, no duplicate.
 */
export class SubscriptionStream<TRouter extends AnyTRPCRouter> implements ConnectionStream {
  private lastEventId: string | undefined;
  private readonly input: unknown;
  /** Retryable errors since the last event: the backoff attempt. */
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private done = false;

  constructor(
    private readonly op: Operation,
    private readonly observer: OperationResultObserver<TRouter, unknown>,
    private readonly connection: SubscriptionConnection,
    private readonly retry: RetryPolicy,
    private readonly retryDelayMs: (attempt: number) => number,
  ) {
    this.input = toWire(op.input);
  }

  start(): void {
    if (this.connection.isClosed) {
      this.finish(new TRPCClientError("The client was closed"));
      return;
    }
    this.connectionState(this.connection.connectionState);
    this.connection.subscribe(this);
  }

  /** The caller unsubscribed (or aborted its signal). */
  stop(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.retryTimer);
    this.connection.unsubscribe(this);
  }

  request(id: number): unknown {
    return {
      id,
      method: "subscription",
      params: { path: this.op.path, input: this.input, lastEventId: this.lastEventId },
    };
  }

  receive(frame: ResponseFrame): void {
    if (frame.m !== undefined) {
      this.receiveCompact(frame.m);
      return;
    }
    const result = frame.result;
    if (result !== undefined) {
      const type = result.type;
      if (type === "data" || type === undefined) {
        if (typeof result.id === "string") this.lastEventId = result.id;
        this.failures = 0;
        // The parsed frame's result object, with its data decoded, is the envelope tRPC expects.
        result.data = fromWire(result.data);
        this.observer.next({ result: result as { type: "data"; data: unknown } });
      } else if (type === "started") {
        this.observer.next({ result: { type: "started" } });
      } else if (type === "stopped") {
        this.done = true;
        this.connection.ended(this);
        this.observer.next({ result: { type: "stopped" } });
        this.observer.complete();
      }
      return;
    }
    if (frame.error !== undefined) this.failed(frame);
  }

  /** A live message in the compact frame: delivered as the tracked item tRPC's frame would decode to. */
  private receiveCompact(m: unknown) {
    const message = fromCompact(m);
    if (message === undefined) return;
    this.lastEventId = message.id;
    this.failures = 0;
    this.observer.next({ result: { type: "data", id: message.id, data: { id: message.id, data: message } } });
  }

  connectionState(state: ConnectionState): void {
    this.observer.next({ result: state, context: this.op.context });
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.retryTimer);
    this.observer.complete();
  }

  private failed(frame: ResponseFrame) {
    const shape = fromWire(frame.error);
    const error = TRPCClientError.from<TRouter>({ ...frame, error: shape } as object);
    this.failures++;
    if (!this.retry(error as TRPCClientError<AnyTRPCRouter>, this.failures)) {
      this.done = true;
      this.connection.ended(this);
      this.observer.error(error);
      return;
    }
    // The server has dropped this request; send it again later, resuming from lastEventId.
    this.connection.park(this);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.done) this.connection.subscribe(this);
    }, this.retryDelayMs(this.failures));
  }

  private finish(error: TRPCClientError<TRouter>) {
    this.done = true;
    this.observer.error(error);
  }
}
