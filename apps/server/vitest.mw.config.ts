import { testConfig } from "@wedsync/vitest-config";

export default testConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One server per test file: an in-memory PGlite takes a few seconds to start and migrate.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Every file starts and stops its own server and shares no state with others; running the files
    // in one module graph saves re-importing (and re-compiling PGlite's WASM) for each of them.
    isolate: false,
    maxWorkers: 3,
  },
});
