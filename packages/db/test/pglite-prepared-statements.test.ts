import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preparingPgliteStatements } from "../src/pglite-prepared-statements.ts";

let pg: PGlite;
let prepared: PGlite;

beforeAll(async () => {
  pg = new PGlite();
  await pg.exec(
    `create table notes (id int primary key, body jsonb, at timestamptz, tags text[], note text)`,
  );
  prepared = preparingPgliteStatements(pg, { capacity: 4 });
});

afterAll(async () => {
  await pg.close();
});

const inTransaction = <T>(client: PGlite, text: string, params: unknown[], options?: object) =>
  client.transaction((tx) => tx.query<T>(text, params, options));

describe("PGlite statements prepared once per SQL text", () => {
  it("answer exactly as PGlite's own query does, rows as objects or arrays, every type parsed", async () => {
    const at = new Date("2027-06-12T14:00:00.123Z");
    await inTransaction(prepared, "insert into notes values ($1, $2, $3, $4, $5)", [
      1,
      JSON.stringify({ ceremony: "2pm" }),
      at,
      ["flowers", "venue"],
      null,
    ]);
    for (const options of [
      undefined,
      { rowMode: "array" },
      { parsers: { 1184: (v: string) => `raw ${v}` } },
    ]) {
      const text = "select * from notes where id = $1";
      const theirs = await inTransaction(pg, text, [1], options);
      const ours = await inTransaction(prepared, text, [1], options);
      expect(ours.rows).toEqual(theirs.rows);
      expect(ours.fields).toEqual(theirs.fields);
    }
    const update = await inTransaction(prepared, "update notes set note = $1 where id = $2", ["x", 1]);
    expect(update.affectedRows).toBe(1);
  });

  it("keep at most `capacity` statements in the database, and still answer evicted ones", async () => {
    for (let round = 0; round < 2; round++) {
      for (let n = 1; n <= 6; n++) {
        const { rows } = await inTransaction<{ n: number }>(prepared, `select $1::int + ${n} as n`, [round]);
        expect(rows).toEqual([{ n: round + n }]);
      }
    }
    const { rows } = await pg.query<{ count: number }>(
      "select count(*)::int as count from pg_prepared_statements",
    );
    expect(rows[0]?.count).toBeLessThanOrEqual(4);
  });

  it("reject a failing statement with the database's error and roll its transaction back", async () => {
    const insert = "insert into notes (id, note) values ($1, $2)";
    const failed = prepared.transaction(async (tx) => {
      await tx.query(insert, [2, "kept?"]);
      await tx.query(insert, [1, "duplicate id"]);
    });
    await expect(failed).rejects.toMatchObject({ code: "23505" });
    const { rows } = await inTransaction(prepared, "select id from notes order by id", []);
    expect(rows).toEqual([{ id: 1 }]);
  });
});
