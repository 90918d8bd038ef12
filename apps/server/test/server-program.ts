import { fileURLToPath } from "node:url";

export const SERVER_DIR = fileURLToPath(new URL("..", import.meta.url));

/**
 * What `pnpm start` runs once it has built the bundle (package.json): tests that start real server
 * processes run that, so they test what is deployed. build-server.ts builds it before any test runs.
 */
export const SERVER_PROGRAM = ["--enable-source-maps", "dist/main.mjs"];
