import { resolve } from "node:path";
import { type Config, loadConfig } from "@wedsync/channels";

/**
 * The configuration with the data dir made absolute against where the user ran the command
 * (pnpm runs scripts inside the package, but `./.data` means the directory the user is in).
 */
export function loadServerConfig(env: Record<string, string | undefined> = process.env): Config {
  const config = loadConfig(env);
  return { ...config, CHANNELS_DATA_DIR: resolve(env.INIT_CWD ?? process.cwd(), config.CHANNELS_DATA_DIR) };
}
