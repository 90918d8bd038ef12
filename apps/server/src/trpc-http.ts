import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { AnyTRPCRouter, TRPCError } from "@trpc/server";
import { createURL, internal_exceptionHandler } from "@trpc/server/adapters/node-http";
import { TRPCError as CallError, resolveResponse } from "@trpc/server/unstable-core-do-not-import";

/**
 * tRPC's own request resolution for JSON POSTs (every mutation our clients send), without its Node
 * adapter's conversion of each request into a fetch Request with a streamed body, an abort
 * controller and a piped response: for a broadcast that conversion cost more CPU than the
 * procedure's own code. The protocol (batching, errors, status codes) is still tRPC's, by
 * `resolveResponse`. Everything else (GET queries, SSE, streamed batches, other content types)
 * goes to tRPC's handler.
 */

export interface JsonPostHandlerOptions<TRouter extends AnyTRPCRouter> {
  router: TRouter;
  /** The tRPC mount, e.g. "/trpc/". */
  basePath: string;
  maxBodySize: number;
  createContext: (req: IncomingMessage) => Promise<TRouter["_def"]["_config"]["$types"]["ctx"]>;
  onError: (opts: { error: TRPCError; path?: string; type: string }) => void;
}

/** The one content type this path takes: the same test as tRPC's JSON handler. */
export function isPlainJsonPost(req: IncomingMessage): boolean {
  if (req.method !== "POST" || req.headers["trpc-accept"] !== undefined) return false;
  const contentType = req.headers["content-type"]?.toLowerCase().split(";", 1)[0]?.trim();
  return contentType === "application/json";
}

/**
 * Never aborted: an accepted mutation runs to its end even when the caller hangs up, because what
 * it stored is acknowledged to whoever asks again (and the drain waits for it).
 */
const runToCompletion = new AbortController().signal;

/** The part of the fetch Headers interface that tRPC's request resolution reads. */
class RequestHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}
  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : value;
  }
}

/** The body as JSON, refused once it passes `maxBytes` (as tRPC's adapter does: 413). */
function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.off("data", onData).off("end", onEnd);
      req.resume();
      reject(new CallError({ code: "PAYLOAD_TOO_LARGE" }));
    };
    const onEnd = () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks, size).toString("utf8")));
      } catch (error) {
        reject(error);
      }
    };
    // A caller that hangs up mid-body ends the call instead of leaving it waiting (no-op after end).
    const onClose = () => reject(new CallError({ code: "CLIENT_CLOSED_REQUEST" }));
    req.on("data", onData).on("end", onEnd).once("error", reject).once("close", onClose);
  });
}

export function createJsonPostHandler<TRouter extends AnyTRPCRouter>(
  options: JsonPostHandlerOptions<TRouter>,
) {
  const { router, basePath, maxBodySize } = options;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const url = createURL(req);
      // Only what resolveResponse reads of a fetch Request; json() is called at most once.
      const request = {
        url: url.href,
        method: "POST",
        headers: new RequestHeaders(req.headers),
        signal: runToCompletion,
        json: () => readJson(req, maxBodySize),
      } as unknown as Request;
      const response = await resolveResponse({
        router,
        req: request,
        path: url.pathname.slice(basePath.length),
        error: null,
        createContext: () => options.createContext(req),
        onError: options.onError,
      });
      res.statusCode = response.status;
      for (const [name, value] of response.headers) res.setHeader(name, value);
      res.end(await response.text());
    } catch (cause) {
      // Only a fault of our own gets here (resolveResponse answers call errors itself): 500, logged.
      const createContext = () => options.createContext(req);
      internal_exceptionHandler({ req, res, path: "", router, createContext, onError: options.onError })(
        cause,
      );
    }
  };
}
