import type { LookupAddress, LookupOptions } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { ResolvedAddress } from "@wedsync/channels";

/**
 * Answers the connection's name lookup with addresses resolved (and checked) beforehand, so that DNS
 * cannot hand the socket another address between the check and the connect (DNS rebinding).
 */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const wanted = options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : options.family;
    const usable: LookupAddress[] = addresses.filter((a) => !wanted || a.family === wanted);
    const first = usable[0];
    if (!first) {
      const error: NodeJS.ErrnoException = new Error(`no checked IPv${wanted} address for ${hostname}`);
      error.code = "ENOTFOUND";
      return callback(error, "", 0);
    }
    if (options.all) return callback(null, usable);
    callback(null, first.address, first.family);
  };
}

export interface PinnedPost {
  /** Where the connection may go: the URL's host is only used for Host, SNI and the certificate. */
  addresses: readonly ResolvedAddress[];
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

/**
 * POSTs `body` and resolves with the response status; the response body is drained, not read.
 * Redirects are not followed (node:http never does).
 */
export function postPinned(url: URL, { addresses, headers, body, signal }: PinnedPost): Promise<number> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup: pinnedLookup(addresses),
        signal,
      },
      (response) => {
        // The status is all that counts; a body cut short later must not crash the process.
        response.on("error", () => {});
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
