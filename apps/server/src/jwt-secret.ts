import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "@wedsync/channels";

/**
 * The HS256 secret: CHANNELS_JWT_SECRET, or in the embedded default one generated on first start
 * and kept under the data dir so that tokens minted with `pnpm run token` stay valid across restarts.
 */
export function resolveJwtSecret(config: Config): { secret: string; source: string } | undefined {
  if (config.CHANNELS_JWT_SECRET)
    return { secret: config.CHANNELS_JWT_SECRET, source: "CHANNELS_JWT_SECRET" };
  if (config.CHANNELS_JWKS_URL) return undefined;
  const file = join(config.CHANNELS_DATA_DIR, "jwt-secret");
  if (!existsSync(file)) {
    mkdirSync(config.CHANNELS_DATA_DIR, { recursive: true });
    writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" });
  }
  return { secret: readFileSync(file, "utf8").trim(), source: file };
}
