import { execFileSync } from "node:child_process";
import { SERVER_DIR } from "./server-program.ts";

/** Vitest global setup: the bundle the process tests start, built once before any of them runs. */
export default function buildServer() {
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: SERVER_DIR, stdio: "inherit" });
}
