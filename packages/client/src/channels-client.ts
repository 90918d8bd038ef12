import {
  createTRPCClientProxy,
  httpBatchLink,
  httpLink,
  type OperationLink,
  splitLink,
  type TRPCClient,
  TRPCClientError,
  type TRPCLink,
} from "@trpc/client";
import type { AnyTRPCRouter } from "@trpc/server";
import type { AppRouter } from "@wedsync/channels";
import { COMPACT_FRAMES, FRAMES_PARAM } from "@wedsync/channels/compact-frame";
import superjson from "superjson";
import { httpFetch } from "#http-fetch";
import { DirectSubscriptionsClient } from "./direct-subscriptions.ts";
import { socketCallsLink } from "./socket-calls.ts";
import { SubscriptionConnection } from "./ws-connection.ts";

export type TokenSource = string | (() => string | Promise<string>);

export interface ChannelsClientOptions {
  /** The server's base URL, e.g. http://127.0.0.1:3001 (the tRPC endpoint is `${url}/trpc`). */
  url: string;
  /** A JWT, or a function returning a fresh one (called again on every reconnect). */
  token: TokenSource;
  /** Reconnect delay for attempt n; defaults to jittered exponential backoff up to 30 s. */
  retryDelayMs?: (attempt: number) => number;
  /** The WebSocket implementation: the `ws` package by default (Node 20 has none built in). */
  webSocket?: typeof globalThis.WebSocket;
  /**
   * Where queries and mutations go. "http" (the default): each is its own request, whatever happens
   * to the socket. "socket": over the WebSocket the subscriptions use (opened if needed), without an
   * HTTP request per call, for a client that broadcasts often. A call whose socket closes before the
   * server answers fails and is not re-sent; a broadcast retried with the same idempotency key is
   * stored once.
   */
  calls?: "http" | "socket";
}

/** Codes a retry cannot fix: the subscription ends and the error reaches the caller. */
const FINAL_CODES = new Set([
  "UNAUTHORIZED",
  "FORBIDDEN",
  "BAD_REQUEST",
  "NOT_FOUND",
  "PRECONDITION_FAILED",
  "TOO_MANY_REQUESTS",
]);

/** Full jitter (AWS style): spreads a crowd of reconnecting clients instead of stampeding. */
export function jitteredBackoff(attempt: number): number {
  const ceiling = Math.min(30_000, 500 * 2 ** attempt);
  return Math.round(Math.random() * ceiling);
}

export interface ChannelsClient {
  /**
   * tRPC's typed proxy over this client, made on each read: what a read builds (a proxy per path
   * segment, memoized by tRPC) goes with it instead of staying with the client, which keeps a
   * process holding thousands of clients (a load generator, a backend acting for many users) about
   * 1.9 KiB lighter per client. Keep what you read for as long as you use it (`const { trpc } = client`).
   */
  readonly trpc: TRPCClient<AppRouter>;
  /** Closes the WebSocket; a script must call it to exit. */
  close(): Promise<void>;
}

/**
 * Typed client: queries and mutations over HTTP (they are not lost with a socket) unless `calls` says
 * "socket", subscriptions over one WebSocket that reconnects with backoff and resumes each stream from
 * its last event id.
 */
export function createChannelsClient(options: ChannelsClientOptions): ChannelsClient {
  const base = options.url.replace(/\/+$/, "");
  const source = options.token;
  const retryDelayMs = options.retryDelayMs ?? jitteredBackoff;
  const connection = new SubscriptionConnection({
    url: `${base.replace(/^http/, "ws")}/trpc?connectionParams=1`,
    webSocket: options.webSocket,
    connectionParams: async () => ({ token: await tokenFrom(source), [FRAMES_PARAM]: COMPACT_FRAMES }),
    retryDelayMs,
    // Connect on the first subscription, close after 30 s without one.
    idleCloseMs: 30_000,
  });
  const untyped = new DirectSubscriptionsClient<AppRouter>(
    {
      links: [
        options.calls === "socket"
          ? socketCallsLink(connection)
          : builtOnFirstUse(() => {
              const http = {
                url: `${base}/trpc`,
                transformer: superjson,
                headers: async () => ({ authorization: `Bearer ${await tokenFrom(source)}` }),
                // Undefined outside Node: tRPC then uses the platform's fetch.
                fetch: httpFetch,
              };
              return splitLink({
                condition: (op) => op.type === "mutation",
                true: httpLink(http),
                false: httpBatchLink(http),
              });
            }),
      ],
    },
    { connection, retry: retryUnlessFinal, retryDelayMs },
  );
  return new Client(untyped, connection);
}

// A class, so that the `trpc` getter lives on its prototype: an object literal with a getter is
// kept as a dictionary, ~0.25 KiB per client.
class Client implements ChannelsClient {
  constructor(
    private readonly untyped: DirectSubscriptionsClient<AppRouter>,
    private readonly connection: SubscriptionConnection,
  ) {}

  get trpc(): TRPCClient<AppRouter> {
    return createTRPCClientProxy<AppRouter>(this.untyped);
  }

  /** An own function, so that `const { close } = client` works. */
  readonly close = (): Promise<void> => this.connection.close();
}

const tokenFrom = async (source: TokenSource) => (typeof source === "function" ? source() : source);

function retryUnlessFinal(error: TRPCClientError<AnyTRPCRouter>, attempt: number): boolean {
  return !FINAL_CODES.has(error.data?.code ?? "") && attempt < 1_000;
}

/**
 * `make()`'s link, built on the first query or mutation: a client that only subscribes (most
 * open connections) never pays for the HTTP links' set-up.
 */
function builtOnFirstUse(make: () => TRPCLink<AppRouter>): TRPCLink<AppRouter> {
  return (runtime) => {
    let link: OperationLink<AppRouter> | undefined;
    return (operation) => {
      link ??= make()(runtime);
      return link(operation);
    };
  };
}

/** The tRPC error code of a failed call (UNAUTHORIZED, FORBIDDEN, ...), if it carries one. */
export function errorCode(error: unknown): string | undefined {
  return error instanceof TRPCClientError ? (error.data?.code as string | undefined) : undefined;
}
