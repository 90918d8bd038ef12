import { describe, expect, it } from "vitest";
import { type HostResolver, nonPublicRange, WebhookTargets } from "../src/webhook-url.ts";

/** A DNS for the test: names map to addresses; anything else does not resolve. */
function fakeDns(records: Record<string, string[]>): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const addresses = records[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({
      address,
      family: address.includes(":") ? (6 as const) : (4 as const),
    }));
  };
  return Object.assign(resolve, { asked });
}

const PUBLIC = "93.184.215.14";
const PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c";

describe("nonPublicRange", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.1.2.3", "private (RFC 1918)"],
    ["172.16.0.1", "private (RFC 1918)"],
    ["172.31.255.254", "private (RFC 1918)"],
    ["192.168.1.1", "private (RFC 1918)"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["100.127.255.254", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["192.0.2.10", "reserved"],
    ["240.0.0.1", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["64:ff9b::a9fe:a9fe", "rfc6052"],
    ["2002:7f00:1::", "6to4"],
    ["::127.0.0.1", "loopback"],
    ["::7f00:1", "reserved"],
    ["100::1", "discard"],
    ["2001:db8::1", "reserved"],
    ["not-an-ip", "unparseable"],
  ])("%s is not public (%s)", (address, range) => {
    expect(nonPublicRange(address)).toBe(range);
  });

  it.each([PUBLIC, "8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1", PUBLIC_V6, "::ffff:8.8.8.8"])(
    "%s is public",
    (address) => {
      expect(nonPublicRange(address)).toBeUndefined();
    },
  );
});

describe("WebhookTargets", () => {
  const strict = (dns: HostResolver) => new WebhookTargets({ CHANNELS_WEBHOOK_ALLOW_PRIVATE: false }, dns);

  it.each([
    ["http://127.0.0.1:8080/in", "127.0.0.1 is not a public address (loopback)"],
    ["http://2130706433/", "127.0.0.1 is not a public address (loopback)"],
    ["http://0x7f.1/", "127.0.0.1 is not a public address (loopback)"],
    ["https://10.0.0.8/hook", "10.0.0.8 is not a public address (private (RFC 1918))"],
    ["http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address (link-local)"],
    ["http://[::1]:3000/", "::1 is not a public address (loopback)"],
    ["http://[::ffff:7f00:1]/", "::ffff:7f00:1 is not a public address (loopback)"],
    ["http://[fe80::1]/", "fe80::1 is not a public address (link-local)"],
    ["http://0.0.0.0:3001/", "0.0.0.0 is not a public address (unspecified)"],
  ])("refuses the literal %s without asking DNS", async (url, reason) => {
    const dns = fakeDns({});
    const check = await strict(dns).check(new URL(url));
    expect(check).toEqual({ ok: false, refused: true, reason: expect.stringContaining(reason) });
    expect(dns.asked).toEqual([]);
  });

  it("refuses a name when any of its addresses is not public, saying which", async () => {
    const dns = fakeDns({
      localhost: ["127.0.0.1"],
      "mixed.example.com": [PUBLIC, "10.0.0.5"],
      "v6.example.com": [PUBLIC_V6, "fd00::5"],
    });
    expect(await strict(dns).check(new URL("http://localhost:3001/"))).toEqual({
      ok: false,
      refused: true,
      reason:
        "localhost resolves to 127.0.0.1, which is not a public address (loopback); webhooks may only reach public addresses",
    });
    expect(await strict(dns).check(new URL("https://mixed.example.com/"))).toMatchObject({
      refused: true,
      reason: expect.stringContaining("mixed.example.com resolves to 10.0.0.5"),
    });
    expect(await strict(dns).check(new URL("https://v6.example.com/"))).toMatchObject({
      refused: true,
      reason: expect.stringContaining("resolves to fd00::5, which is not a public address (unique-local)"),
    });
  });

  it("accepts public literals and names, returning every address to connect to", async () => {
    const dns = fakeDns({ "hooks.example.com": [PUBLIC, PUBLIC_V6] });
    expect(await strict(dns).check(new URL("https://hooks.example.com/in"))).toEqual({
      ok: true,
      addresses: [
        { address: PUBLIC, family: 4 },
        { address: PUBLIC_V6, family: 6 },
      ],
    });
    expect(await strict(dns).check(new URL(`http://[${PUBLIC_V6}]:8443/`))).toEqual({
      ok: true,
      addresses: [{ address: PUBLIC_V6, family: 6 }],
    });
  });

  it("a name that does not resolve is not refused but not reachable either", async () => {
    expect(await strict(fakeDns({})).check(new URL("https://nowhere.example/"))).toEqual({
      ok: false,
      refused: false,
      reason: "nowhere.example did not resolve (ENOTFOUND)",
    });
  });

  it("stops waiting for a name lookup when the signal fires", async () => {
    const hanging: HostResolver = () => new Promise(() => {});
    const check = strict(hanging).check(new URL("https://slow.example/"), AbortSignal.timeout(50));
    expect(await check).toEqual({
      ok: false,
      refused: false,
      reason: "slow.example did not resolve in time",
    });
  });

  it("CHANNELS_WEBHOOK_ALLOW_PRIVATE lets private targets through, still resolved", async () => {
    const config = { CHANNELS_WEBHOOK_ALLOW_PRIVATE: true };
    const targets = new WebhookTargets(config, fakeDns({ localhost: ["127.0.0.1"] }));
    expect(await targets.check(new URL("http://localhost:3001/"))).toEqual({
      ok: true,
      addresses: [{ address: "127.0.0.1", family: 4 }],
    });
    expect(await targets.check(new URL("http://10.0.0.8/"))).toMatchObject({ ok: true });
    config.CHANNELS_WEBHOOK_ALLOW_PRIVATE = false;
    expect(await targets.check(new URL("http://10.0.0.8/"))).toMatchObject({ ok: false, refused: true });
  });

  it("uses the system's resolver by default, hosts file included", async () => {
    const targets = new WebhookTargets({ CHANNELS_WEBHOOK_ALLOW_PRIVATE: false });
    expect(await targets.check(new URL("http://localhost/"))).toMatchObject({
      ok: false,
      refused: true,
      reason: expect.stringMatching(
        /^localhost resolves to (127\.0\.0\.1|::1), which is not a public address \(loopback\)/,
      ),
    });
  });
});
