import { describe, it } from "vitest";
import { type DatabaseHandle, openDatabase } from "../src/client.ts";
import { createFreshDatabase, postgresUrlForTests } from "./fresh-postgres.ts";

/** An opened database for one suite; `close` also drops a fresh Postgres database. */
export interface SuiteDatabase {
  handle: DatabaseHandle;
  close(): Promise<void>;
}

/**
 * Defines `suite` twice: on an in-memory PGlite and on a fresh Postgres database (DATABASE_URL; under
 * CI a missing URL fails the file instead of skipping it, see postgresUrlForTests).
 */
export function onEachDatabase(
  title: string,
  suite: (name: string, open: () => Promise<SuiteDatabase>) => void,
) {
  suite("pglite", async () => {
    const handle = await openDatabase({ memory: true });
    return { handle, close: () => handle.close() };
  });
  const adminUrl = postgresUrlForTests(`${title}: postgres`);
  if (!adminUrl) {
    describe.skip(`${title}: postgres`, () => {
      it("needs DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)", () => {});
    });
    return;
  }
  suite("postgres", async () => {
    const fresh = await createFreshDatabase(adminUrl);
    const handle = await openDatabase({ url: fresh.url }).catch(async (error: unknown) => {
      await fresh.drop();
      throw error;
    });
    return {
      handle,
      close: async () => {
        try {
          await handle.close();
        } finally {
          await fresh.drop();
        }
      },
    };
  });
}
