import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { isObservable, observableToAsyncIterable } from "@trpc/server/observable";
import {
  type AnyRouter,
  callProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  type inferRouterContext,
  isAsyncIterable,
  isObject,
  parseConnectionParamsFromUnknown,
  parseTRPCMessage,
  type TRPCClientOutgoingMessage,
  TRPCError,
  type TRPCRequestMessage,
  type TRPCResponseMessage,
  transformTRPCResponse,
} from "@trpc/server/unstable-core-do-not-import";
import { COMPACT_FRAMES, FRAMES_PARAM, type OutboundSocket, type StopSignal } from "@wedsync/channels";
import type { WebSocket } from "ws";
import { textFrame } from "./text-frame.ts";
import { type SubscriptionHost, type WsCall, WsSubscription } from "./trpc-ws-subscription.ts";
import { beforeWrite, type TurnWriter } from "./turn-cork.ts";

export interface WsEncoder {
  encode(response: unknown): string;
  decode(frame: string | Buffer): unknown;
}

export interface WsErrorReport<TRouter extends AnyRouter> {
  error: TRPCError;
  type: WsCall["type"];
  path: string | undefined;
  input: unknown;
  ctx: inferRouterContext<TRouter> | undefined;
}

export interface WsContextOptions {
  /** The first frame's `data` when the client connected with `?connectionParams=1`, else null. */
  connectionParams: Record<string, string | undefined> | null;
  socket: WebSocket;
  /** Where the connection's streams write their live messages: the socket itself, or a wrapper of it. */
  outbound: OutboundSocket;
}

export interface TrpcWsOptions<TRouter extends AnyRouter> {
  router: TRouter;
  /**
   * Subscriptions opened without tRPC's procedure runner, by path: each must do what its procedure
   * does (see @wedsync/channels' direct-subscriptions.ts). Every other call goes through callProcedure.
   */
  directSubscriptions?: ReadonlyMap<
    string,
    (ctx: inferRouterContext<TRouter>, input: unknown, signal: StopSignal) => Promise<unknown>
  >;
  encoder: WsEncoder;
  /** Runs once per connection, at connect or on its connectionParams; a rejection answers an error and closes. */
  createContext(options: WsContextOptions): Promise<inferRouterContext<TRouter>>;
  onError(report: WsErrorReport<TRouter>): void;
}

type Context<TRouter extends AnyRouter> = inferRouterContext<TRouter>;

/** Errors about a frame rather than a call: tRPC answers them with `id: null`. */
const FRAME: WsCall = { id: null, jsonrpc: undefined, type: "unknown", path: undefined, input: undefined };

const WEBSOCKET_OPEN = 1;
const TEXT = { binary: false };

/**
 * tRPC's WebSocket protocol (what `@trpc/client`'s wsLink speaks), served with one connection object
 * per socket and one WsSubscription per subscription. tRPC's own adapter gives every connection about
 * twenty closures and an AbortController, and every subscription a second AbortController, Unpromise
 * races and two suspended async frames; an idle subscribed connection is mostly that. The frames
 * are the same: answers go through tRPC's transformTRPCResponse and getErrorShape and the encoder.
 *
 * The socket listeners are shared by all connections (`this` is the socket that emitted).
 */
export class TrpcWsHandler<TRouter extends AnyRouter> {
  private readonly connections = new Map<WebSocket, TrpcWsConnection<TRouter>>();
  private readonly onMessage: (this: WebSocket, frame: Buffer, isBinary: boolean) => void;
  private readonly onSocketError: (this: WebSocket, cause: Error) => void;
  private readonly onClose: (this: WebSocket) => void;

  constructor(readonly options: TrpcWsOptions<TRouter>) {
    const { connections } = this;
    // ws hands "message" listeners a Buffer: the server leaves its binaryType at "nodebuffer".
    this.onMessage = function onMessage(this: WebSocket, frame: Buffer, isBinary: boolean) {
      connections.get(this)?.receive(frame, isBinary);
    };
    this.onSocketError = function onSocketError(this: WebSocket, cause: Error) {
      connections.get(this)?.socketFailed(cause);
    };
    this.onClose = function onClose(this: WebSocket) {
      const connection = connections.get(this);
      connections.delete(this);
      connection?.closed();
    };
  }

  /**
   * Serves tRPC on an upgraded socket; of the upgrade request only its URL is read, and not kept.
   * `transport` is the connection the socket was upgraded from, where turn-cork.ts holds frames.
   */
  accept(socket: WebSocket, req: IncomingMessage, transport: Duplex) {
    const connection = new TrpcWsConnection(this, socket, transport);
    this.connections.set(socket, connection);
    socket.on("message", this.onMessage);
    socket.on("error", this.onSocketError);
    socket.on("close", this.onClose);
    if (!awaitsConnectionParams(req.url)) connection.createContext(null);
  }

  /** Asks every client to reconnect (shutdown): wsLink then reconnects, elsewhere or later. */
  broadcastReconnectNotification() {
    const frame = this.options.encoder.encode({ id: null, method: "reconnect" });
    for (const socket of this.connections.keys()) {
      if (socket.readyState === WEBSOCKET_OPEN) socket.send(frame);
    }
  }
}

/**
 * One socket: its context, its live subscriptions (made on first use) and the calls it answers. It is
 * also the socket its streams write live messages to (OutboundSocket), so that every frame it sends
 * goes through turn-cork.ts.
 */
class TrpcWsConnection<TRouter extends AnyRouter> implements SubscriptionHost, OutboundSocket, TurnWriter {
  lastWriteTurn = -1;
  compactFrames = false;
  // Declared, so that every connection has the same shape from the start.
  subscriptionSlots = 0;
  private ctx: Context<TRouter> | undefined;
  /** Settles once createContext has run; undefined until the client sent its connectionParams. */
  private context: Promise<Context<TRouter>> | undefined;
  /**
   * Its live subscriptions, made with the first. An array, not a Map by id: a connection holds one
   * or a few, and the array keeps 0.16 KiB less per subscribed connection (heap snapshots).
   */
  private subscriptions: WsSubscription[] | undefined;

  constructor(
    private readonly handler: TrpcWsHandler<TRouter>,
    private readonly socket: WebSocket,
    private readonly transport: Duplex,
  ) {}

  /**
   * What `ws` reports as bufferedAmount, read from the transport alone: `ws` adds what its sender
   * queued itself, which it does only to compress or to read a Blob (neither here, see sendText).
   * Read once per live delivery, and `ws`'s getter reaches two more objects for that zero.
   */
  get bufferedAmount() {
    return this.transport.writableLength;
  }

  send(data: Buffer | string, options: { binary: boolean } = TEXT) {
    beforeWrite(this, this.transport);
    this.socket.send(data, options);
  }

  /**
   * Straight to the transport, beside `ws`: its sender writes each frame synchronously, in call order,
   * as long as it never queues, and it queues only to compress (permessage-deflate is off, server.ts)
   * or to read a Blob (never sent here). A socket that is no longer open gets nothing, as from `ws`.
   */
  sendText(payload: Buffer) {
    if (this.socket.readyState !== WEBSOCKET_OPEN) return;
    beforeWrite(this, this.transport);
    this.transport.write(textFrame(payload));
  }

  close(code?: number, reason?: string) {
    this.socket.close(code, reason);
  }

  receive(data: Buffer, isBinary: boolean) {
    const frame = isBinary ? data : data.toString("utf8");
    if (frame === "PONG") return;
    if (frame === "PING") return void this.send("PONG");
    if (this.context === undefined) return this.createContext(frame);
    const requests = this.parse(frame);
    for (let i = 0; i < requests.length; i++) this.handle(requests[i]!, i);
  }

  /** `connectionFrame`: the first frame, carrying the connectionParams; null when none are expected. */
  createContext(connectionFrame: string | Buffer | null) {
    this.context = this.makeContext(connectionFrame);
    this.context.catch((cause) => this.refuse(cause));
  }

  closed() {
    const subscriptions = this.subscriptions;
    this.subscriptions = undefined;
    if (subscriptions) for (const subscription of subscriptions) subscription.stop();
  }

  respond(response: TRPCResponseMessage) {
    const { router, encoder } = this.handler.options;
    this.send(encoder.encode(transformTRPCResponse(router._def._config, response)));
  }

  /** Passes the error to onError, then answers the call with it. */
  reportError(cause: unknown, call: WsCall) {
    const error = getTRPCErrorFromUnknown(cause);
    this.handler.options.onError({
      error,
      type: call.type,
      path: call.path,
      input: call.input,
      ctx: this.ctx,
    });
    this.respondError(error, call);
  }

  /** The error shape, as the router's errorFormatter and transformer make it. */
  private respondError(error: TRPCError, call: WsCall) {
    const { type, path, input } = call;
    const config = this.handler.options.router._def._config;
    const shape = getErrorShape({ config, error, type, path, input, ctx: this.ctx });
    this.respond({ id: call.id, jsonrpc: call.jsonrpc, error: shape });
  }

  /** The socket itself failed (its close follows): logged through onError, nobody to answer. */
  socketFailed(cause: Error) {
    const error = getTRPCErrorFromUnknown(cause);
    this.handler.options.onError({
      error,
      type: "unknown",
      path: undefined,
      input: undefined,
      ctx: this.ctx,
    });
  }

  forget(subscription: WsSubscription) {
    const at = this.subscriptions?.indexOf(subscription) ?? -1;
    if (at >= 0) this.subscriptions!.splice(at, 1);
  }

  private async makeContext(connectionFrame: string | Buffer | null) {
    const connectionParams = connectionFrame === null ? null : this.connectionParams(connectionFrame);
    this.compactFrames = connectionParams?.[FRAMES_PARAM] === COMPACT_FRAMES;
    this.ctx = await this.handler.options.createContext({
      connectionParams,
      socket: this.socket,
      outbound: this,
    });
    return this.ctx;
  }

  private connectionParams(frame: string | Buffer) {
    let message: unknown;
    try {
      message = this.handler.options.encoder.decode(frame);
      if (!isObject(message)) throw new Error("Message was not an object");
    } catch (cause) {
      throw new TRPCError({ code: "PARSE_ERROR", message: "Malformed TRPCConnectionParamsMessage", cause });
    }
    return parseConnectionParamsFromUnknown(message.data);
  }

  /** Without a context nothing can be answered: say why, then close (wsLink reconnects). */
  private refuse(cause: unknown) {
    this.reportError(cause, FRAME);
    setImmediate(closeSocket, this.socket);
  }

  /** A frame holds one request or a batch; one unparsable request refuses the whole frame. */
  private parse(frame: string | Buffer): TRPCClientOutgoingMessage[] {
    const { router, encoder } = this.handler.options;
    try {
      const decoded = encoder.decode(frame);
      const transformer = router._def._config.transformer;
      return (Array.isArray(decoded) ? decoded : [decoded]).map((raw) => parseTRPCMessage(raw, transformer));
    } catch (cause) {
      // Not passed to onError: tRPC's adapter does not report unparsable frames either.
      this.respondError(new TRPCError({ code: "PARSE_ERROR", cause }), FRAME);
      return [];
    }
  }

  private handle(request: TRPCClientOutgoingMessage, batchIndex: number) {
    const { id, jsonrpc } = request;
    if (id === null) {
      const error = new TRPCError({ code: "PARSE_ERROR", message: "`id` is required" });
      return this.reportError(error, { ...FRAME, jsonrpc });
    }
    if (request.method === "subscription.stop") return this.subscriptionWith(id)?.stop();
    const { path, lastEventId } = request.params;
    const input =
      lastEventId === undefined ? request.params.input : withLastEventId(request.params.input, lastEventId);
    if (request.method === "subscription") void this.subscribe(request, input, batchIndex);
    else void this.call({ id, jsonrpc, type: request.method, path, input }, batchIndex);
  }

  /** A query or mutation: one `data` answer. */
  private async call(call: WsCall & { type: "query" | "mutation"; path: string }, batchIndex: number) {
    const { id, jsonrpc, type, path, input } = call;
    try {
      const data = await this.runProcedure(type, path, input, undefined, batchIndex);
      if (isAsyncIterable(data) || isObservable(data)) {
        throw new TRPCError({
          code: "UNSUPPORTED_MEDIA_TYPE",
          message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets`,
        });
      }
      this.respond({ id, jsonrpc, result: { type: "data", data } });
    } catch (cause) {
      this.reportError(cause, call);
    }
  }

  private subscriptionWith(id: WsCall["id"]) {
    return this.subscriptions?.find((subscription) => subscription.id === id);
  }

  /** The procedure at `path`, with this connection's context once it exists. */
  private async runProcedure(
    type: "query" | "mutation" | "subscription",
    path: string,
    input: unknown,
    signal: AbortSignal | undefined,
    batchIndex: number,
  ) {
    const ctx = await this.context;
    const { router } = this.handler.options;
    return callProcedure({ router, path, getRawInput: async () => input, ctx, type, signal, batchIndex });
  }

  /**
   * The id is taken before the procedure runs, so a duplicate is refused without opening a second
   * stream, and a `subscription.stop` or a close during set-up aborts the procedure's signal.
   */
  private async subscribe(request: TRPCRequestMessage, input: unknown, batchIndex: number) {
    const { id, jsonrpc } = request;
    const { path } = request.params;
    if (this.subscriptionWith(id) !== undefined) {
      const error = new TRPCError({ code: "BAD_REQUEST", message: `Duplicate id ${id}` });
      return this.reportError(error, { id, jsonrpc, type: "subscription", path, input });
    }
    const subscription = new WsSubscription(this, id, jsonrpc, path, input);
    if (this.subscriptions === undefined) this.subscriptions = [subscription];
    else this.subscriptions.push(subscription);
    try {
      const direct = this.handler.options.directSubscriptions?.get(path);
      const result = direct
        ? await direct(await this.context, input, subscription)
        : await this.runProcedure("subscription", path, input, subscription.signal, batchIndex);
      const iterable = isObservable(result) ? observableToAsyncIterable(result, subscription.signal) : result;
      if (!isAsyncIterable(iterable)) {
        throw new TRPCError({
          code: "INTERNAL_SERVER_ERROR",
          message: `Subscription ${path} did not return an observable or a AsyncGenerator`,
        });
      }
      // Stopped or closing while the procedure ran: nobody will read it. Aborting its signal is what
      // releases what the procedure set up (a stream that was never iterated also ends by itself).
      if (subscription.aborted || this.socket.readyState !== WEBSOCKET_OPEN) {
        subscription.stop();
        return this.forget(subscription);
      }
      subscription.start(iterable);
    } catch (cause) {
      this.forget(subscription);
      this.reportError(cause, subscription);
    }
  }
}

/**
 * Whether the upgrade URL has `connectionParams=1`, as tRPC's adapter reads it. Only the query is
 * parsed: a whole URL parse was ~10 ms per 1,000 connects in a cold storm's profile.
 */
function awaitsConnectionParams(url: string | undefined): boolean {
  const query = url?.indexOf("?") ?? -1;
  return query >= 0 && new URLSearchParams(url!.slice(query + 1)).get("connectionParams") === "1";
}

/** tRPC merges the resume point into the input: wsLink sends it beside the input on reconnect. */
function withLastEventId(input: unknown, lastEventId: string) {
  if (isObject(input)) return { ...input, lastEventId };
  return input ?? { lastEventId };
}

function closeSocket(socket: WebSocket) {
  socket.close();
}
