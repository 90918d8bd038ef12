import { randomBytes } from "node:crypto";
import postgres from "postgres";

export interface FreshPostgres {
  /** URL of the new, empty database (same server and credentials as the admin URL). */
  url: string;
  name: string;
  /** Drops the database, terminating any connection still open on it. */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named, empty database on the server behind `adminUrl`
 * (any database the role can connect to; it needs CREATEDB). Run migrations on
 * `url` yourself, e.g. with `openDatabase({ url })`.
 */
export async function createFreshDatabase(
  adminUrl: string,
  prefix = "channels_test",
): Promise<FreshPostgres> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`invalid database name prefix: ${prefix}`);
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  await withAdmin(adminUrl, (sql) => sql.unsafe(`create database "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withAdmin(adminUrl, (sql) => sql.unsafe(`drop database if exists "${name}" with (force)`));
    },
  };
}

async function withAdmin(adminUrl: string, run: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await run(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * The admin URL for Postgres-backed tests. Unset: throws under CI (a silently
 * skipped database suite is a hole in the safety net), otherwise returns
 * undefined so the caller can skip with a note.
 */
export function postgresUrlForTests(suite: string): string | undefined {
  const url = process.env.DATABASE_URL;
  if (url) return url;
  if (process.env.CI) {
    throw new Error(
      `${suite}: DATABASE_URL is not set but CI is. Postgres-backed tests must run in CI; ` +
        "set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to a server where the role may CREATE DATABASE.",
    );
  }
  console.warn(
    `[${suite}] skipped: DATABASE_URL is not set (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test).`,
  );
  return undefined;
}
