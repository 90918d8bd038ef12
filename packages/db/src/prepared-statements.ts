import type postgres from "postgres";
import { takePrologue } from "./transaction-prologue.ts";

type Sql = postgres.Sql;
type Work = (tx: Sql) => unknown;

/**
 * Makes every statement drizzle sends through postgres.js a prepared one (postgres.js keeps them per
 * connection, by text). Drizzle only prepares queries built with `.prepare(name)`, so each statement
 * would be parsed and planned on every call; under row level security the planner inlines the policy
 * expressions into each statement, which measured ~3 ms of planning for a 0.4 ms append. Prepared, the
 * plan is built once per connection and reused: the policies read the caller from settings at run time.
 *
 * Transactions are pipelined (see `pipelinedBegin`).
 */
export function preparingEveryStatement(sql: Sql): Sql {
  // Built once per client: drizzle reads `unsafe` for every statement it sends.
  const unsafe = (query: string, args?: unknown[], options?: Record<string, unknown>) =>
    sql.unsafe(query, args as postgres.ParameterOrJSON<never>[], { ...options, prepare: true });
  const begin = (...args: unknown[]) => {
    const work = args.pop() as Work;
    // Transaction options (isolation level) are never used by the store; keep postgres.js's own way for them.
    if (args.length > 0)
      return (sql.begin as (...a: unknown[]) => unknown)(...args, (tx: Sql) =>
        work(preparingEveryStatement(tx)),
      );
    return pipelinedBegin(sql, work);
  };
  return new Proxy(sql, {
    get(target, property, receiver) {
      if (property === "unsafe") return unsafe;
      if (property === "begin") return begin;
      return Reflect.get(target, property, receiver);
    },
  });
}

/**
 * A transaction in two round trips instead of four: BEGIN, the prologue (the actor statement, and any
 * statement the work put ahead of its own) and the work's first statement go out in one write on a
 * reserved connection (postgres.js writes what is queued in one event-loop turn together, and runs a
 * connection's statements in the order they were queued), then COMMIT. postgres.js's own `begin`
 * waits for BEGIN, the store then waited for the actor statement.
 *
 * Order is what row level security rests on: BEGIN and the prologue are queued synchronously here,
 * before the work is even called, so none of its statements can run before them; if the prologue fails
 * the transaction is aborted and every later statement fails with it. COMMIT of a transaction in which a
 * statement failed (even one the work caught) is a rollback, reported as an error, as with
 * postgres.js's `begin`: nothing resolves as committed that was not.
 */
async function pipelinedBegin(sql: Sql, work: Work): Promise<unknown> {
  const prologue = takePrologue();
  const reserved = await sql.reserve();
  try {
    const opening = Promise.all([
      reserved.unsafe("begin").execute(),
      ...(prologue?.statements ?? []).map(({ text, params }) =>
        reserved.unsafe(text, params as never[], { prepare: true }).execute(),
      ),
    ]);
    let result: unknown;
    try {
      [, result] = await Promise.all([opening, work(preparingEveryStatement(reserved))]);
    } catch (error) {
      await reserved.unsafe("rollback").catch(() => {});
      throw error;
    }
    const committed = await reserved.unsafe("commit");
    if (committed.command !== "COMMIT")
      throw new Error("the transaction was rolled back: a statement in it failed");
    return result;
  } finally {
    reserved.release();
  }
}
