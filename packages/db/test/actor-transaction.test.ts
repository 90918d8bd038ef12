import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transactionAs } from "../src/actor-transaction.ts";
import type { DatabaseHandle } from "../src/client.ts";
import { onEachDatabase, type SuiteDatabase } from "./each-database.ts";

/** postgres.js answers `execute` with the array of rows, PGlite with `{ rows }`. */
const rowsOf = async <T>(result: Promise<unknown>) => {
  const answer = (await result) as T[] | { rows: T[] };
  return Array.isArray(answer) ? answer : answer.rows;
};

/** Transactions whose actor statement is pipelined with BEGIN and the first statement. */
onEachDatabase("actor transactions", (name, open) => {
  describe(`actor transactions: ${name}`, () => {
    let database: SuiteDatabase;
    let handle: DatabaseHandle;
    const planner = {
      kind: "user",
      sub: "planner-1",
      role: "couple",
      suppliers: [],
      couples: ["c-1"],
      venues: [],
    } as const;

    beforeAll(async () => {
      database = await open();
      handle = database.handle;
      await handle.db.execute(sql`create table scratch (n int)`);
      await handle.db.execute(sql`grant insert, select on scratch to wedsync_app`);
    });
    afterAll(async () => {
      await database?.close();
    });

    it("runs the first statement as the actor, not as the connection's owner role", async () => {
      const [row] = await transactionAs(handle.db, planner, (tx) =>
        rowsOf<{ who: string; sub: string }>(
          tx.execute(sql`select current_user as who, current_setting('app.user_id') as sub`),
        ),
      );
      expect(row).toEqual({ who: "wedsync_app", sub: "planner-1" });
    });

    it("commits nothing, and rejects, when a statement failed even though the work caught it", async () => {
      const attempt = transactionAs(handle.db, planner, async (tx) => {
        await tx.execute(sql`insert into scratch values (1)`);
        await tx.execute(sql`select 1 / 0`).catch(() => undefined);
        return "done";
      });
      await expect(attempt).rejects.toThrow();
      const [count] = await rowsOf<{ n: number }>(
        handle.db.execute(sql`select count(*)::int as n from scratch`),
      );
      expect(count?.n).toBe(0);
    });

    it("commits the work's writes and the connection is clean for the next transaction", async () => {
      await transactionAs(handle.db, planner, (tx) => tx.execute(sql`insert into scratch values (2)`));
      const [after] = await transactionAs(handle.db, { kind: "service" }, (tx) =>
        rowsOf<{ n: number; who: string }>(
          tx.execute(
            sql`select (select count(*)::int from scratch) as n, current_setting('app.user_id') as who`,
          ),
        ),
      );
      expect(after).toEqual({ n: 1, who: "" });
    });
  });
});
