// Plain JavaScript: Vite's config loader runs files inside node_modules (this package) untranspiled.
import { defineConfig, mergeConfig } from "vitest/config";

/**
 * Shared test settings: tests live in test/, real servers (PGlite, Postgres, sockets) need generous
 * hook timeouts, and each package writes a JSON report that .ci/run sums into one closing line.
 * @param {import("vitest/config").ViteUserConfig} [overrides]
 */
export function testConfig(overrides = {}) {
  return mergeConfig(
    defineConfig({
      test: {
        include: ["test/**/*.test.ts"],
        testTimeout: 20_000,
        hookTimeout: 30_000,
        reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
      },
    }),
    overrides,
  );
}
