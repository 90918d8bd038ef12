import { parseArgs } from "node:util";
import { identityClaimsSchema, mintToken } from "@wedsync/channels";
import { resolveJwtSecret } from "./jwt-secret.ts";
import { loadServerConfig } from "./server-config.ts";

const usage = `usage: pnpm run token -- --sub <userId> --role <supplier|couple|coordinator|admin>
  [--tier free|paid] [--supplier id]... [--couple id]... [--venue id]... [--expires 12h]`;

const { values } = parseArgs({
  // `pnpm run x -- --flag` passes the "--" through.
  args: process.argv.slice(2).filter((arg, i) => i > 0 || arg !== "--"),
  options: {
    sub: { type: "string" },
    role: { type: "string" },
    tier: { type: "string", default: "free" },
    supplier: { type: "string", multiple: true, default: [] },
    couple: { type: "string", multiple: true, default: [] },
    venue: { type: "string", multiple: true, default: [] },
    expires: { type: "string", default: "12h" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(usage);
  process.exit(0);
}
const claims = identityClaimsSchema.safeParse({
  sub: values.sub,
  role: values.role,
  tier: values.tier,
  suppliers: values.supplier,
  couples: values.couple,
  venues: values.venue,
});
if (!claims.success) {
  console.error(
    `${claims.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("\n")}\n${usage}`,
  );
  process.exit(2);
}
const secret = resolveJwtSecret(loadServerConfig());
if (!secret) {
  console.error("tokens for a JWKS-configured server are issued by its identity provider, not here");
  process.exit(2);
}
console.log(await mintToken(secret.secret, claims.data, values.expires));
