// Plain JavaScript: it runs before anything is built (apps/server's `pnpm start`, the bench).
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

/**
 * This workspace's source is bundled; whatever resolves into node_modules is left to Node, as the
 * absolute file URL Node would have resolved from the importing file. pnpm keeps each workspace
 * package's dependencies beside it, so a bare name would not resolve from the bundle's directory.
 * `import.meta.url` keeps naming each source file, so paths built from it (packages/db's
 * migrations) resolve as they do from source.
 */
const thirdPartyInPlace = {
  name: "third-party-in-place",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === "resolving") return undefined;
      if (args.path.startsWith("node:")) return { external: true };
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "resolving",
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      if (resolved.external) return { path: resolved.path, external: true };
      if (!resolved.path.includes("/node_modules/"))
        return { path: resolved.path, sideEffects: resolved.sideEffects };
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

/**
 * Bundles `entry` (a program of this workspace) into `outfile`, an ES module that plain node runs
 * in place: it imports its dependencies from this checkout, so it is not copied elsewhere.
 *
 * Why not run the source under tsx: tsx compiles every module on each start, and always with
 * esbuild's keepNames, which wraps every named function and closure in a defineProperty call that
 * gives the closure its own property array. A subscribed server connection kept three such closures
 * (retained heap 8.42 KiB per connection under tsx, 7.61 bundled), a WedSync client about fifteen.
 */
export async function bundleInPlace(entry, outfile) {
  await build({
    entryPoints: [fileURLToPath(entry)],
    outfile: fileURLToPath(outfile),
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
}
