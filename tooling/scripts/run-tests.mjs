#!/usr/bin/env node
// Typecheck, lint and test every workspace through turbo, then print one closing line summed over
// the packages' vitest JSON reports, so a reader (or CI) sees the total without scrolling.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const workspaces = ["apps", "packages", "tooling"].flatMap((group) =>
  existsSync(join(root, group)) ? readdirSync(join(root, group)).map((name) => join(root, group, name)) : [],
);
const reports = workspaces.map((dir) => join(dir, "test-results", "vitest.json"));
for (const report of reports) rmSync(report, { force: true });

const turbo = spawnSync("turbo", ["run", "typecheck", "lint", "test", "--continue", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
const status = turbo.status ?? 1;

let passed = 0;
let failed = 0;
let skipped = 0;
for (const report of reports.filter((file) => existsSync(file))) {
  const result = JSON.parse(readFileSync(report, "utf8"));
  passed += result.numPassedTests;
  failed += result.numFailedTests;
  skipped += result.numPendingTests + result.numTodoTests;
}
if (status !== 0 && failed === 0) failed = 1; // a typecheck, lint or start-up failure counts too
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status);
