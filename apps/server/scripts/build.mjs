#!/usr/bin/env node
// Bundles the server's TypeScript (this app and the workspace packages it imports) into
// dist/main.mjs, which `pnpm start` runs with plain node.
//
// Why not run the source under tsx, as before: tsx compiles every module on each start, and it
// always compiles with esbuild's keepNames, which wraps every named function and closure in a
// defineProperty call. On the WebSocket connect path that made three closures per subscription
// carry a property array (0.8 KiB more retained heap per connection, 8.4 against 7.6 KiB measured)
// and cost CPU on every connect.
//
// dist/ runs in place, not copied elsewhere: third-party packages stay outside the bundle and are
// imported from where this checkout installed them (pnpm keeps each workspace package's
// dependencies beside it, so a bare name would not resolve from dist/), and `import.meta.url` keeps
// naming each source file, so paths such as packages/db's migrations resolve as they do from source.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const app = new URL("..", import.meta.url);
const started = performance.now();

/** Workspace packages are bundled from source; every other bare import is left to Node. */
const thirdPartyInPlace = {
  name: "third-party-in-place",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === "resolving" || args.path.startsWith("@wedsync/")) return undefined;
      if (args.path.startsWith("node:")) return { external: true };
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "resolving",
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: pathToFileURL(resolved.path).href, external: true };
    });
    build.onLoad({ filter: /\.ts$/ }, async (args) => ({
      contents: (await readFile(args.path, "utf8")).replaceAll(
        "import.meta.url",
        JSON.stringify(pathToFileURL(args.path).href),
      ),
      loader: "ts",
    }));
  },
};

await build({
  entryPoints: [new URL("src/main.ts", app).pathname],
  outfile: new URL("dist/main.mjs", app).pathname,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Node's own resolution picks the same files (no "module" condition).
  conditions: ["node"],
  sourcemap: true,
  logLevel: "warning",
  plugins: [thirdPartyInPlace],
});
console.error(`[build] apps/server/dist/main.mjs in ${Math.round(performance.now() - started)} ms`);
