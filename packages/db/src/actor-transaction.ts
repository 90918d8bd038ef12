import { PgDialect } from "drizzle-orm/pg-core";
import type { Database } from "./client.ts";
import { actorStatement, type StoreActor } from "./store-actor.ts";
import { offerPrologue, type Prologue } from "./transaction-prologue.ts";

export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

const dialect = new PgDialect();

/**
 * Runs `work` in one transaction as `actor`: the actor statement comes first, so row level security
 * applies to every statement of `work`. On Postgres it goes out with BEGIN and the first statement of
 * `work` (one round trip); where the driver does not take it (PGlite), it runs here before `work`.
 */
export function transactionAs<T>(
  db: Database,
  actor: StoreActor,
  work: (tx: Transaction) => Promise<T>,
): Promise<T> {
  const statement = actorStatement(actor);
  const { sql: text, params } = dialect.sqlToQuery(statement);
  const prologue: Prologue = { text, params, sent: false };
  return offerPrologue(prologue, () =>
    db.transaction(async (tx) => {
      if (!prologue.sent) await tx.execute(statement);
      return work(tx);
    }),
  );
}
