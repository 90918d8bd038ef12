import { isTrackedEnvelope, type TRPCResponseMessage } from "@trpc/server/unstable-core-do-not-import";
import type { StopListener, StopSignal } from "@wedsync/channels";

/** A request's identity as its answers need it: every frame answering it carries `id` and `jsonrpc`. */
export interface WsCall {
  readonly id: TRPCResponseMessage["id"];
  readonly jsonrpc: "2.0" | undefined;
  readonly type: "query" | "mutation" | "subscription" | "unknown";
  readonly path: string | undefined;
  readonly input: unknown;
}

/** What a subscription needs of the connection it runs on. */
export interface SubscriptionHost {
  respond(response: TRPCResponseMessage): void;
  /** Passes the error to onError and answers the call with its error shape. */
  reportError(cause: unknown, call: WsCall): void;
  /** The subscription ended: its id may be used again. */
  forget(subscription: WsSubscription): void;
}

const STOPPED = { type: "stopped" } as const;

/**
 * Why a subscription's signal aborts: one shared reason. `abort()` without one makes a DOMException
 * per call, capturing a stack trace: 13 µs of every subscription's end in a CPU profile of 5,000
 * closing connections, where it was the costliest function of the close.
 */
const STOPPED_REASON = new DOMException("The subscription was stopped", "AbortError");

/**
 * One `subscription` request: the signal that stops it (by `subscription.stop` or the socket
 * closing) and the loop that forwards what the procedure's async iterable yields. An idle subscribed
 * connection keeps one of these per stream, so it holds only what answering needs; the iterator and
 * the loop's state live in the pending `pump` call.
 *
 * It is its own StopSignal, which is all a direct subscription (@wedsync/channels'
 * direct-subscriptions.ts) needs; a procedure run through tRPC gets a real AbortSignal (`signal`),
 * made when first asked for.
 */
export class WsSubscription implements WsCall, StopSignal {
  private stopped = false;
  private controller: AbortController | undefined;
  private listeners: StopListener[] | undefined;

  constructor(
    private readonly host: SubscriptionHost,
    readonly id: TRPCResponseMessage["id"],
    readonly jsonrpc: "2.0" | undefined,
    readonly path: string,
    readonly input: unknown,
  ) {}

  get type() {
    return "subscription" as const;
  }

  get aborted() {
    return this.stopped;
  }

  /** An AbortSignal that aborts with this subscription, for procedures run through tRPC. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(STOPPED_REASON);
    }
    return this.controller.signal;
  }

  /** As on an AbortSignal: called once, on stop; never after it. */
  addEventListener(_type: "abort", listener: StopListener) {
    if (this.stopped) return;
    // Made with its first listener: an empty array's first push reserves room for 17 (0.15 KiB).
    if (this.listeners === undefined) this.listeners = [listener];
    else this.listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: StopListener) {
    const listeners = this.listeners;
    if (listeners === undefined) return;
    const at = listeners.indexOf(listener);
    if (at < 0) return;
    // The last one out drops the array: emptied by splice, its next push would reserve room for 17.
    if (listeners.length === 1) this.listeners = undefined;
    else listeners.splice(at, 1);
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.controller?.abort(STOPPED_REASON);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener.handleEvent();
  }

  /**
   * Answers `started` and forwards the iterable. Its first step runs before `started` is encoded,
   * in the same synchronous run: channelsWsEncoder learns which stream a `started` frame answers
   * from exactly that order (see expectStartedFrame in wire-format.ts).
   */
  start(iterable: AsyncIterable<unknown>) {
    const iterator = iterable[Symbol.asyncIterator]();
    const first = iterator.next();
    this.host.respond({ id: this.id, jsonrpc: this.jsonrpc, result: { type: "started" } });
    void this.pump(iterator, first);
  }

  /** Answers `data` per value, then `stopped` (after an error shape if the iterator threw). */
  private async pump(iterator: AsyncIterator<unknown>, first: Promise<IteratorResult<unknown>>) {
    const { host, id, jsonrpc } = this;
    try {
      for (let next = first; ; next = iterator.next()) {
        let step: IteratorResult<unknown>;
        try {
          step = await next;
        } catch (cause) {
          host.reportError(cause, this);
          break;
        }
        if (step.done) break;
        if (this.aborted) {
          // Stopped while the generator waits at a yield: return() runs its `finally`, which
          // releases what the stream holds (inbox, presence, gauges).
          await iterator.return?.();
          break;
        }
        host.respond({ id, jsonrpc, result: dataResult(step.value) });
      }
      host.respond({ id, jsonrpc, result: STOPPED });
    } catch (cause) {
      // A value the transformer could not serialize, or a `finally` that threw.
      this.stop();
      host.reportError(cause, this);
      await iterator.return?.().catch(() => {});
    } finally {
      host.forget(this);
    }
  }
}

/** A yielded value as tRPC frames it; a `tracked()` value also carries its id for the client's resume. */
function dataResult(value: unknown) {
  if (!isTrackedEnvelope(value)) return { type: "data" as const, data: value };
  const [id, data] = value;
  // Key order as tRPC's adapter builds it (type, data, id): the frames stay byte for byte the same.
  return { type: "data" as const, data: { id, data }, id };
}
