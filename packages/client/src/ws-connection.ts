import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { TRPCClientError } from "@trpc/client";
import WebSocket from "ws";

/**
 * One WebSocket shared by every subscription of a client, speaking tRPC v11's WebSocket protocol:
 * it connects when the first subscription (or call) needs it, sends a fresh token on every connect,
 * routes each response to its subscription by request id, reconnects with backoff after any loss and
 * then re-sends every live subscription. What a subscription does with its responses is
 * SubscriptionStream's job (ws-subscription.ts). Queries and mutations may use the socket too
 * (socket-calls.ts): each is sent once and answered once, never re-sent.
 */

/** A response frame as tRPC's WebSocket adapter sends it (or a server request, with `method`). */
export interface ResponseFrame {
  id: number | string | null;
  method?: string;
  result?: { type?: string; id?: string; data?: unknown };
  error?: unknown;
}

/** A query or mutation sent over the socket. */
export interface SocketCall {
  /** The request to send under this request id. */
  request(id: number): unknown;
  /** The server's answer: a `data` result or an error. */
  answer(frame: ResponseFrame): void;
  /** No answer will come: the call was never sent, or its socket closed before the server answered. */
  fail(error: TRPCClientError<never>): void;
}

/** tRPC's connection states, passed on to each subscription's onConnectionStateChange. */
export type ConnectionState =
  | { type: "state"; state: "idle"; error: null }
  | { type: "state"; state: "connecting"; error: TRPCClientError<never> | null }
  | { type: "state"; state: "pending"; error: null };

/** What the connection needs from one subscription. */
export interface ConnectionStream {
  /** The id its request was last sent under; the connection's to set. */
  requestId: number | undefined;
  /** The `subscription` request to send under this request id, with the current resume point. */
  request(id: number): unknown;
  /** A response to that request. */
  receive(frame: ResponseFrame): void;
  /** A live message in a compact frame (`@wedsync/channels/compact-frame`), which this client asks for. */
  receiveCompact(frame: readonly unknown[]): void;
  connectionState(state: ConnectionState): void;
  /** The client was closed: the subscription ends without an error. */
  end(): void;
}

export interface SubscriptionConnectionOptions {
  /** The WebSocket URL, `?connectionParams=1` included. */
  url: string;
  /** Called on every connect, so that a reconnect after a token expired sends a fresh one. */
  connectionParams: () => Promise<Record<string, string>>;
  /** Delay before reconnect attempt n (0 for the first after a working connection). */
  retryDelayMs: (attempt: number) => number;
  /** A browser-style WebSocket class; the `ws` package when absent. */
  webSocket?: typeof globalThis.WebSocket;
  /** How long the socket stays open without subscriptions. */
  idleCloseMs: number;
}

/** The part of a WebSocket this file uses, common to browsers' and the `ws` package's. */
interface Socket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

interface SocketEvents {
  open(): void;
  message(text: string): void;
  close(code: number, reason: string): void;
}

const CLOSING = 2;

const ignore = () => {};

/** Runs `send`, whose frames then leave in one write where the socket allows it. */
type SendTogether = (send: () => void) => void;

/** Wires the socket's events to `events`; returns how to send several frames in one write. */
function listen(socket: Socket, events: SocketEvents): SendTogether {
  if (socket instanceof WebSocket) {
    // The TCP socket under the `ws` WebSocket, held back while frames are queued so that the
    // connectionParams and the first subscriptions reach the server in one packet and one read.
    let transport: Duplex | undefined;
    socket.once("upgrade", (response: IncomingMessage) => {
      transport = response.socket;
    });
    // The `ws` package's own events: its addEventListener would wrap every frame in a MessageEvent.
    socket.on("open", events.open);
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) events.message(data.toString());
    });
    socket.on("close", (code: number, reason: Buffer) => events.close(code, reason.toString()));
    // Always followed by "close"; an EventEmitter without an "error" listener would throw instead.
    socket.on("error", ignore);
    return (send) => {
      transport?.cork();
      try {
        send();
      } finally {
        transport?.uncork();
      }
    };
  }
  const target = socket as unknown as globalThis.WebSocket;
  target.addEventListener("open", () => events.open());
  target.addEventListener("message", (event) => {
    if (typeof event.data === "string") events.message(event.data);
  });
  target.addEventListener("close", (event) => events.close(event.code, event.reason));
  target.addEventListener("error", ignore);
  return (send) => send();
}

export class SubscriptionConnection {
  private socket: Socket | undefined;
  /** Open and connectionParams sent: requests can go out. */
  private ready = false;
  /** Between deciding to connect and the socket opening (the token may still be on its way). */
  private connecting = false;
  private closed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Connections in a row that ended before the server answered anything: the backoff attempt. */
  private failures = 0;
  private lastRequestId = 0;
  private state: ConnectionState = { type: "state", state: "idle", error: null };
  /** Every subscription that has not ended, including those waiting to retry after an error. */
  private readonly streams = new Set<ConnectionStream>();
  /**
   * Subscriptions on the current socket by request id. Each (re)send gets a new id (ids are never
   * reused), so late frames of an old one, or a stream's stale `requestId`, match nothing.
   */
  private readonly byRequestId = new Map<number | string, ConnectionStream>();
  // The rest is made when first needed: a client process may hold thousands of connections, and an
  // empty Map or Set costs ~0.2 KiB each.
  /** Subscriptions the server ended with a retryable error: not re-sent until they ask. */
  private parked: Set<ConnectionStream> | undefined;
  /** Calls waiting for the socket to open; sent once it does. */
  private waitingCalls: SocketCall[] = [];
  /** Calls sent on the current socket, by request id, until answered. */
  private callsInFlight: Map<number | string, SocketCall> | undefined;
  /** Sockets of a server that asked clients to reconnect, with the calls they still owe an answer. */
  private retiring: Map<Socket, Retiring> | undefined;

  constructor(private readonly options: SubscriptionConnectionOptions) {}

  get isClosed(): boolean {
    return this.closed;
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** Sends the subscription now if the socket is ready, or once it is (connecting if needed). */
  subscribe(stream: ConnectionStream): void {
    this.streams.add(stream);
    this.parked?.delete(stream);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.ready) this.send([stream]);
    else this.connect();
  }

  /** Sends a query or mutation now if the socket is ready, or once it is (connecting if needed). */
  call(call: SocketCall): void {
    if (this.closed) {
      call.fail(new TRPCClientError("The client was closed"));
      return;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.ready) {
      this.waitingCalls.push(call);
      this.connect();
      return;
    }
    const id = ++this.lastRequestId;
    this.callsInFlight ??= new Map();
    this.callsInFlight.set(id, call);
    this.socket!.send(JSON.stringify(call.request(id)));
  }

  /**
   * The caller no longer wants the answer (it aborted): a call not yet sent never will be. One already
   * sent is still owed its answer, which its caller ignores.
   */
  forgetCall(call: SocketCall): void {
    const waiting = this.waitingCalls.indexOf(call);
    if (waiting < 0) return;
    this.waitingCalls.splice(waiting, 1);
    if (this.idle()) this.closeWhenIdle();
  }

  /** The caller stopped listening: tell the server, unless it already ended the subscription. */
  unsubscribe(stream: ConnectionStream): void {
    const id = this.forgetRequest(stream);
    if (id !== undefined && this.ready)
      this.socket!.send(JSON.stringify({ id, method: "subscription.stop" }));
    this.streams.delete(stream);
    this.parked?.delete(stream);
    if (this.idle()) this.closeWhenIdle();
  }

  /** The server ended the subscription ("stopped" or a final error): nothing to stop or re-send. */
  ended(stream: ConnectionStream): void {
    this.forgetRequest(stream);
    this.streams.delete(stream);
    this.parked?.delete(stream);
    if (this.idle()) this.closeWhenIdle();
  }

  /** The server ended the subscription with a retryable error: keep it, but re-send only on subscribe(). */
  park(stream: ConnectionStream): void {
    this.forgetRequest(stream);
    this.parked ??= new Set();
    this.parked.add(stream);
  }

  /** Ends every subscription and closes the socket; the client cannot subscribe again. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.idleTimer);
    const streams = [...this.streams];
    this.streams.clear();
    this.parked = undefined;
    this.dropSocket("the client was closed");
    for (const socket of this.retiring?.keys() ?? [])
      failInFlight(this.release(socket), "the client was closed");
    for (const stream of streams) stream.end();
  }

  /** Nothing subscribed and no call waiting for an answer: the socket may close. */
  private idle(): boolean {
    return this.streams.size === 0 && this.waitingCalls.length === 0 && !this.callsInFlight?.size;
  }

  /** The stream's request id on the current socket, which it stops answering to. */
  private forgetRequest(stream: ConnectionStream): number | undefined {
    const id = stream.requestId;
    if (id === undefined || this.byRequestId.get(id) !== stream) return undefined;
    this.byRequestId.delete(id);
    return id;
  }

  private send(streams: ConnectionStream[]) {
    const requests = streams.map((stream) => {
      this.forgetRequest(stream);
      const id = ++this.lastRequestId;
      this.byRequestId.set(id, stream);
      stream.requestId = id;
      return stream.request(id);
    });
    // Several at once go as one array frame, as tRPC's own client batches them.
    this.socket!.send(JSON.stringify(requests.length === 1 ? requests[0] : requests));
  }

  private connect() {
    if (this.closed || this.socket !== undefined || this.connecting || this.reconnectTimer !== undefined)
      return;
    this.connecting = true;
    if (this.state.state === "idle") this.setState({ type: "state", state: "connecting", error: null });
    this.open().catch((error: unknown) => this.lost(error));
  }

  private async open() {
    const params = await this.options.connectionParams();
    if (this.closed || (this.streams.size === 0 && this.waitingCalls.length === 0)) {
      this.connecting = false;
      this.setState({ type: "state", state: "idle", error: null });
      return;
    }
    const Impl = this.options.webSocket as unknown as (new (url: string) => Socket) | undefined;
    // The server never negotiates permessage-deflate (server.ts): offering it would only cost every
    // connect an extension object, a header and its parse.
    const socket = Impl
      ? new Impl(this.options.url)
      : new WebSocket(this.options.url, { perMessageDeflate: false });
    this.socket = socket;
    const sendTogether = listen(socket, {
      open: () => {
        if (this.socket !== socket) return;
        this.connecting = false;
        this.ready = true;
        sendTogether(() => {
          socket.send(JSON.stringify({ method: "connectionParams", data: params }));
          this.setState({ type: "state", state: "pending", error: null });
          const waiting = [...this.streams].filter((stream) => !this.parked?.has(stream));
          if (waiting.length > 0) this.send(waiting);
          const calls = this.waitingCalls;
          this.waitingCalls = [];
          for (const call of calls) this.call(call);
        });
        if (this.idle()) this.closeWhenIdle();
      },
      message: (text) => {
        if (this.socket === socket) this.receive(text);
        else this.receiveRetiring(socket, text);
      },
      // The cause is built only for someone to read: after the client closed the socket itself (the
      // common close), nothing is owed and an Error's stack capture would be wasted.
      close: (code, reason) => {
        if (this.socket === socket) return this.lost(closeCause(code, reason));
        const owed = this.release(socket);
        if (owed.length > 0) failInFlight(owed, "the WebSocket closed", closeCause(code, reason));
      },
    });
  }

  /** The hot path: one JSON.parse and one map lookup per frame, then the subscription's own handling. */
  private receive(text: string) {
    if (text === "PING") {
      this.socket!.send("PONG");
      return;
    }
    if (text === "PONG") return;
    const frame = parseFrame(text);
    if (frame === undefined) return;
    this.failures = 0;
    if (Array.isArray(frame)) {
      this.byRequestId.get(frame[0] as number | string)?.receiveCompact(frame);
      return;
    }
    if (frame.method !== undefined) {
      if (frame.method === "reconnect") this.retire();
      return;
    }
    if (frame.id === null) return;
    const stream = this.byRequestId.get(frame.id);
    if (stream !== undefined) return stream.receive(frame);
    const call = this.callsInFlight?.get(frame.id);
    if (call === undefined) return;
    this.callsInFlight!.delete(frame.id);
    call.answer(frame);
    if (this.idle()) this.closeWhenIdle();
  }

  /**
   * The server is shutting down: go elsewhere now (the load balancer picks another instance). Calls
   * already sent stay on this socket until answered, since the server answers what it accepted before
   * it closes; the socket closes once it owes nothing.
   */
  private retire() {
    const socket = this.socket;
    const calls = this.callsInFlight;
    if (socket !== undefined && calls !== undefined && calls.size > 0) {
      const deadline = setTimeout(() => {
        const reason = `no answer ${RETIRING_GRACE_MS} ms after the server asked clients to reconnect`;
        failInFlight(this.release(socket), reason);
      }, RETIRING_GRACE_MS);
      this.retiring ??= new Map();
      this.retiring.set(socket, { calls, deadline });
      this.callsInFlight = undefined;
      // Detached, so that moving on neither closes it nor fails its calls.
      this.socket = undefined;
    }
    this.lost(new Error("server asked clients to reconnect"));
  }

  /** A frame on a retiring socket: only answers to its calls matter. */
  private receiveRetiring(socket: Socket, text: string) {
    const calls = this.retiring?.get(socket)?.calls;
    if (calls === undefined) return;
    const frame = parseFrame(text);
    if (frame === undefined || Array.isArray(frame) || frame.id === null) return;
    const call = calls.get(frame.id);
    if (call === undefined) return;
    calls.delete(frame.id);
    call.answer(frame);
    if (calls.size === 0) this.release(socket);
  }

  /** Stops keeping a retiring socket: closes it and returns the calls it still owed. */
  private release(socket: Socket): SocketCall[] {
    const entry = this.retiring?.get(socket);
    if (entry === undefined) return [];
    this.retiring!.delete(socket);
    clearTimeout(entry.deadline);
    if (socket.readyState < CLOSING) socket.close();
    return [...entry.calls.values()];
  }

  /** The socket went (or must go): reconnect after a backoff if anything is still subscribed. */
  private lost(cause: unknown) {
    const reason = cause instanceof Error ? cause : new Error(String(cause));
    this.dropSocket("the WebSocket closed", reason);
    if (this.closed) return;
    if (this.streams.size === 0) {
      this.setState({ type: "state", state: "idle", error: null });
      return;
    }
    const error = new TRPCClientError<never>("WebSocket closed", { cause: reason });
    this.setState({ type: "state", state: "connecting", error });
    const delay = this.options.retryDelayMs(this.failures);
    this.failures++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.streams.size > 0) this.connect();
      else this.setState({ type: "state", state: "idle", error: null });
    }, delay);
  }

  /**
   * Closes the socket and fails its calls; neither kind is re-sent. A call never sent did not take
   * effect. One sent may have (a broadcast may be stored): retrying it with the same idempotency key
   * is safe.
   */
  private dropSocket(reason: string, cause?: Error) {
    const socket = this.socket;
    this.socket = undefined;
    this.ready = false;
    this.connecting = false;
    this.byRequestId.clear();
    const waiting = this.waitingCalls;
    const inFlight = this.callsInFlight;
    this.waitingCalls = [];
    this.callsInFlight = undefined;
    if (socket !== undefined && socket.readyState < CLOSING) socket.close();
    for (const call of waiting) call.fail(new TRPCClientError(`${reason}; the call was not sent`, { cause }));
    if (inFlight !== undefined) failInFlight(inFlight.values(), reason, cause);
  }

  private closeWhenIdle() {
    if (this.idleTimer !== undefined || this.socket === undefined) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (!this.idle()) return;
      this.dropSocket("the WebSocket closed while idle");
      this.setState({ type: "state", state: "idle", error: null });
    }, this.options.idleCloseMs);
  }

  private setState(state: ConnectionState) {
    this.state = state;
    for (const stream of this.streams) stream.connectionState(state);
  }
}

/** A socket the server asked clients to leave, kept until it answers the calls sent on it. */
interface Retiring {
  calls: Map<number | string, SocketCall>;
  /** Fails what is left if the answers take longer than RETIRING_GRACE_MS. */
  deadline: ReturnType<typeof setTimeout>;
}

/** How long a retiring socket may take to answer (the server gives accepted mutations up to 5 s). */
const RETIRING_GRACE_MS = 10_000;

/** A frame's JSON, if it is an object (tRPC's frames) or an array (compact frames). */
function parseFrame(text: string): ResponseFrame | unknown[] | undefined {
  try {
    const frame: unknown = JSON.parse(text);
    return frame !== null && typeof frame === "object" ? (frame as ResponseFrame | unknown[]) : undefined;
  } catch {
    return undefined;
  }
}

const closeCause = (code: number, reason: string) =>
  new Error(`WebSocket closed (${code}${reason ? `: ${reason}` : ""})`);

/** Fails calls that were sent: they may have taken effect. */
function failInFlight(calls: Iterable<SocketCall>, reason: string, cause?: Error) {
  for (const call of calls)
    call.fail(
      new TRPCClientError(`${reason} before the server answered; the call may have taken effect`, { cause }),
    );
}
