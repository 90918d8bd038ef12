import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // PGlite takes ~2 s to start and migrate; a fresh Postgres database is created per suite.
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
