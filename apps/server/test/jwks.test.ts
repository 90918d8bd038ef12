import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, startTestServer, type TestServer, uid } from "./harness.ts";

/** An identity provider's JWKS endpoint, served locally. */
let jwksServer: Server;
let server: TestServer;
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
let signingKey: PrivateKey;
let strangerKey: PrivateKey;

const claims = (s: string) => ({ role: "supplier", tier: "free", suppliers: [s], couples: [], venues: [] });

function sign(
  key: PrivateKey,
  subject: string,
  body: Record<string, unknown>,
  options: { kid?: string; exp?: string; aud?: string } = {},
) {
  return new SignJWT(body)
    .setProtectedHeader({ alg: "RS256", kid: options.kid ?? "k1" })
    .setSubject(subject)
    .setIssuer("https://id.wedsync.test")
    .setAudience(options.aud ?? "channels")
    .setIssuedAt()
    .setExpirationTime(options.exp ?? "5m")
    .sign(key);
}

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair("RS256")).privateKey;
  const publicJwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [publicJwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
  const { port } = jwksServer.address() as AddressInfo;
  server = await startTestServer({
    env: {
      CHANNELS_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      CHANNELS_JWT_ISSUER: "https://id.wedsync.test",
      CHANNELS_JWT_AUDIENCE: "channels",
    },
  });
});

afterAll(async () => {
  await server?.stop();
  jwksServer?.close();
});

describe("tokens from an identity provider (JWKS)", () => {
  it("accepts a token signed by a published key, with the configured issuer and audience", async () => {
    const s = uid("s");
    const client = server.clientWithToken(await sign(signingKey, uid("u"), claims(s)));
    const created = await client.trpc.channel.create.mutate({
      scope: "supplier",
      entity: "dashboard",
      entityId: s,
    });
    expect(created.name).toBe(`supplier:dashboard:${s}`);
  });

  it.each([
    ["a key the provider never published", () => sign(strangerKey, "u", claims("s1"))],
    ["an unknown key id", () => sign(strangerKey, "u", claims("s1"), { kid: "k-rotated-away" })],
    ["the wrong audience", () => sign(signingKey, "u", claims("s1"), { aud: "somebody-else" })],
    ["an expired token", () => sign(signingKey, "u", claims("s1"), { exp: "-1m" })],
    [
      "alg none",
      async () =>
        `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${Buffer.from(
          JSON.stringify({ sub: "u", ...claims("s1"), exp: Math.floor(Date.now() / 1000) + 300 }),
        ).toString("base64url")}.`,
    ],
  ])("refuses %s with UNAUTHORIZED", async (_label, token) => {
    const client = server.clientWithToken(await token());
    expect(await codeOf(client.trpc.channel.list.query())).toBe("UNAUTHORIZED");
  });
});
