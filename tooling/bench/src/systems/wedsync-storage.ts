/**
 * Fresh storage for every WedSync start: a PGlite data dir copied from a migrated template (made
 * once per bench process, saving the migrations on every start), or a new `bench_<random>` database
 * on the local Postgres, dropped afterwards.
 */
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { SystemUnavailable } from "./types.ts";

const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface Storage {
  env: Record<string, string>;
  release(): Promise<void>;
}

let template: Promise<string> | undefined;

/** The next start makes a new template (the old one no longer starts a server). */
export function forgetTemplate() {
  template = undefined;
}

/**
 * `migrate(dir)` starts a server on an empty data dir and stops it once ready; its files then serve
 * as the template for every later start.
 */
export async function pgliteStorage(migrate: (dir: string) => Promise<void>): Promise<Storage> {
  template ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "wedsync-bench-template-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    await migrate(dir);
    return dir;
  })();
  const source = await template;
  const dir = mkdtempSync(join(tmpdir(), "wedsync-bench-"));
  cpSync(source, dir, { recursive: true });
  return {
    env: { CHANNELS_DATA_DIR: dir },
    release: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function postgresStorage(): Promise<Storage> {
  const name = `bench_${randomBytes(5).toString("hex")}`;
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end();
    throw new SystemUnavailable(`Postgres at ${POSTGRES_URL} is not usable: ${(error as Error).message}`);
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    async release() {
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
