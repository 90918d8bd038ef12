#!/usr/bin/env node
// Makes `npm start` / `npm test` work on a machine with only Node 20 and npm:
// finds (or fetches) the pinned pnpm, installs from the lockfile, then runs the command.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const root = new URL("../..", import.meta.url).pathname;
const pinned = JSON.parse(readFileSync(`${root}package.json`, "utf8")).packageManager.split("@")[1];
const env = { ...process.env, pnpm_config_manage_package_manager_versions: "false" };

function run(cmd, args) {
  const result = spawnSync(cmd, args, { cwd: root, env, stdio: "inherit" });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function pnpmCommand() {
  const probe = spawnSync("pnpm", ["--version"], { env, encoding: "utf8" });
  if (probe.status === 0 && probe.stdout.trim() === pinned) return ["pnpm", []];
  console.error(`[with-deps] pnpm ${pinned} not on PATH; using npx -y pnpm@${pinned}`);
  return ["npx", ["-y", `pnpm@${pinned}`]];
}

const [pnpm, pnpmArgs] = pnpmCommand();
const installArgs = ["install", "--frozen-lockfile", "--prefer-offline"];
console.error("[with-deps] installing dependencies from pnpm-lock.yaml");
const installed = run(pnpm, [...pnpmArgs, ...installArgs]);
if (installed !== 0) process.exit(installed);

const [first, ...rest] = process.argv.slice(2);
const args = first === "pnpm" ? rest : ["exec", first, ...rest];
process.exit(run(pnpm, [...pnpmArgs, ...args]));
