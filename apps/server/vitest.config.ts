import { testConfig } from "@wedsync/vitest-config";

// Every file starts and stops its own server(s) and shares no state with others.
const shared = {
  // One server per test file: an in-memory PGlite takes a few seconds to start and migrate.
  testTimeout: 30_000,
  hookTimeout: 30_000,
  // Running the files in one module graph saves re-importing (and re-compiling PGlite's WASM).
  isolate: false,
};

export default testConfig({
  test: {
    globalSetup: ["test/build-server.ts"],
    projects: [
      { test: { ...shared, name: "server", include: ["test/*.test.ts"] } },
      {
        // Real server processes, nginx and Redis: after the in-process tests, one file at a time
        // (each starts three or four processes; two at once would only measure the machine).
        test: {
          ...shared,
          name: "cluster",
          include: ["test/cluster/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
