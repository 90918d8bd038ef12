import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** getaddrinfo, as a connection would use it: the hosts file counts, so `localhost` is caught too. */
export const systemResolver: HostResolver = async (hostname) =>
  (await lookup(hostname, { all: true })).map(({ address, family }) => ({
    address,
    family: family === 6 ? 6 : 4,
  }));

/** Only this block is allocated for global IPv6 unicast; ipaddr.js calls anything it has no name for "unicast". */
const GLOBAL_IPV6 = ipaddr.parseCIDR("2000::/3");

const RANGE_NAMES: Record<string, string> = {
  linkLocal: "link-local",
  carrierGradeNat: "carrier-grade NAT",
  uniqueLocal: "unique-local",
  private: "private (RFC 1918)",
};

/** What kind of non-public address this is ("loopback", "link-local", …), or undefined for a public one. */
export function nonPublicRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return "unparseable";
  // Unwraps ::ffff:a.b.c.d, which reaches the IPv4 address it carries.
  const ip = ipaddr.process(address);
  const range = ip.range();
  if (range !== "unicast") return RANGE_NAMES[range] ?? range;
  if (ip.kind() === "ipv6" && !ip.match(GLOBAL_IPV6)) return "reserved";
  return undefined;
}

/** getaddrinfo cannot be cancelled: stop waiting for it when the signal fires. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const abort = () => reject(signal.reason);
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

export type TargetCheck =
  | { ok: true; addresses: ResolvedAddress[] }
  | { ok: false; refused: boolean; reason: string };

/**
 * Where outbound webhooks may connect (SSRF): public unicast addresses only, unless the operator set
 * CHANNELS_WEBHOOK_ALLOW_PRIVATE. A host name is judged by every address it resolves to, since the
 * connection may use any of them. Registration checks once for early, readable refusals; each delivery
 * checks again and connects only to the addresses it checked, because DNS may answer differently later.
 */
export class WebhookTargets {
  constructor(
    private readonly config: { CHANNELS_WEBHOOK_ALLOW_PRIVATE: boolean },
    private readonly resolve: HostResolver = systemResolver,
  ) {}

  /** A name lookup still running when `signal` fires counts as not resolving. */
  async check(url: URL, signal?: AbortSignal): Promise<TargetCheck> {
    // WHATWG URLs already turned 2130706433, 0x7f.1 and friends into dotted IPv4.
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const family = isIP(host);
    let addresses: ResolvedAddress[];
    if (family === 4 || family === 6) {
      addresses = [{ address: host, family }];
    } else {
      try {
        addresses = await unlessAborted(this.resolve(host), signal);
      } catch (error) {
        const why = signal?.aborted
          ? "in time"
          : `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
        return { ok: false, refused: false, reason: `${host} did not resolve ${why}` };
      }
      if (addresses.length === 0) return { ok: false, refused: false, reason: `${host} has no addresses` };
    }
    if (this.config.CHANNELS_WEBHOOK_ALLOW_PRIVATE) return { ok: true, addresses };
    for (const { address } of addresses) {
      const range = nonPublicRange(address);
      if (range === undefined) continue;
      const what = address === host ? address : `${host} resolves to ${address}, which`;
      return {
        ok: false,
        refused: true,
        reason: `${what} is not a public address (${range}); webhooks may only reach public addresses`,
      };
    }
    return { ok: true, addresses };
  }
}
