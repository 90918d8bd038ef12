import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Database } from "./client.ts";
import { actorStatement, type StoreActor } from "./store-actor.ts";
import { offerPrologue, type Prologue } from "./transaction-prologue.ts";

export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

const dialect = new PgDialect();

/**
 * Runs `work` in one transaction as `actor`: the actor statement comes first, so row level security
 * applies to every statement of `work`, then `leading` in order (statements the work needs run before
 * its own, such as a lock: sent this way they cannot be overtaken by the work's first statement, and
 * cost no round trip of their own). On Postgres they go out with BEGIN and the first statement of
 * `work` (one round trip); where the driver does not take them (PGlite), they run here before `work`.
 */
export function transactionAs<T>(
  db: Database,
  actor: StoreActor,
  work: (tx: Transaction) => Promise<T>,
  leading: readonly SQL[] = [],
): Promise<T> {
  const first = [actorStatement(actor), ...leading];
  const statements = first.map((statement) => {
    const { sql: text, params } = dialect.sqlToQuery(statement);
    return { text, params };
  });
  const prologue: Prologue = { statements, sent: false };
  return offerPrologue(prologue, () =>
    db.transaction(async (tx) => {
      if (!prologue.sent) for (const statement of first) await tx.execute(statement);
      return work(tx);
    }),
  );
}
