#!/usr/bin/env node
// Bundles the server (this app and the workspace packages it imports) into dist/main.mjs, which
// `pnpm start` runs with plain node: no TypeScript compiled at start, no tsx wrappers (see
// @wedsync/bundle). dist/ runs in place: it imports its dependencies from this checkout.
import { bundleInPlace } from "@wedsync/bundle";

const started = performance.now();
await bundleInPlace(new URL("../src/main.ts", import.meta.url), new URL("../dist/main.mjs", import.meta.url));
console.error(`[build] apps/server/dist/main.mjs in ${Math.round(performance.now() - started)} ms`);
