import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { type EmbeddedMaintenance, vacuumDueTables } from "./embedded-vacuum.ts";
import { preparingPgliteStatements } from "./pglite-prepared-statements.ts";
import { preparingEveryStatement } from "./prepared-statements.ts";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface DatabaseHandle {
  db: Database;
  kind: "pglite" | "postgres";
  /** Where the data lives, for the start-up banner (never includes a password). */
  location: string;
  ping(): Promise<void>;
  /**
   * Vacuums and analyzes the tables autovacuum would now, where no autovacuum runs (PGlite: see
   * embedded-vacuum.ts); returns their names. On Postgres its own autovacuum does this: nothing to do.
   */
  vacuum(): Promise<EmbeddedMaintenance>;
  close(): Promise<void>;
}

export type DatabaseOptions =
  | { url: string; maxConnections?: number }
  | { dataDir: string }
  | { memory: true };

const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
/** Any constant shared by every instance; serializes concurrent migrators. */
const MIGRATION_LOCK_KEY = 7_315_020_001;

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  return "url" in options ? openPostgres(options.url, options.maxConnections ?? 10) : openPglite(options);
}

async function openPglite(options: { dataDir: string } | { memory: true }): Promise<DatabaseHandle> {
  const dataDir = "dataDir" in options ? options.dataDir : undefined;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const client = new PGlite(dataDir);
  await migratePglite(drizzlePglite({ client, schema }), { migrationsFolder });
  const db = drizzlePglite({ client: preparingPgliteStatements(client), schema });
  return {
    db: db as unknown as Database,
    kind: "pglite",
    location: dataDir ?? "memory",
    ping: async () => {
      await client.query("select 1");
    },
    vacuum: () => vacuumDueTables(client),
    close: () => client.close(),
  };
}

async function openPostgres(url: string, maxConnections: number): Promise<DatabaseHandle> {
  await migrateUnderLock(url);
  const client = postgres(url, { max: maxConnections, onnotice: () => {} });
  const db = drizzlePostgres({ client: preparingEveryStatement(client), schema });
  const parsed = new URL(url);
  return {
    db: db as unknown as Database,
    kind: "postgres",
    location: `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`,
    ping: async () => {
      await client`select 1`;
    },
    vacuum: async () => ({ vacuumed: [], analyzed: [] }),
    close: () => client.end({ timeout: 5 }),
  };
}

/** Several instances may start at once: one connection holds an advisory lock while it migrates. */
async function migrateUnderLock(url: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await migratePostgres(drizzlePostgres({ client }), { migrationsFolder });
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
  } finally {
    await client.end({ timeout: 5 });
  }
}
