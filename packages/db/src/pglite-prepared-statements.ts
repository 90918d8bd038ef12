import { type PGlite, type QueryOptions, type Results, type Transaction, types } from "@electric-sql/pglite";
import { serialize } from "pg-protocol";
import { takePrologue } from "./transaction-prologue.ts";

/**
 * Makes every statement run inside a PGlite transaction a named prepared statement, parsed and
 * described once per distinct SQL text: the embedded twin of prepared-statements.ts. PGlite's own
 * `query` sends an unnamed Parse, a Describe, Bind, another Describe, Execute and Sync on every call,
 * each its own trip into the WASM module, and Postgres plans the statement afresh each time; under
 * row level security the planner inlines the policies into it, so planning was most of an append
 * (measured 2.05 ms for the actor statement plus an append, 0.78 ms with the append prepared). Here a
 * call is one trip (Bind, Execute, Sync) and the plan is kept by Postgres: the policies read the
 * caller from per-transaction settings when the plan runs. Statements outside a transaction (start-up
 * and migrations) keep PGlite's own path.
 *
 * Transactions are pipelined as on Postgres (prepared-statements.ts): BEGIN and the actor statement
 * (transaction-prologue.ts) go into the WASM module in the same trip as the transaction's first
 * statement, and COMMIT is the only other trip. Each trip costs ~35 µs whatever it carries: a
 * transaction of the actor statement and one read took 181 µs of CPU as PGlite runs it (BEGIN, the
 * two statements and COMMIT, one trip each) and 70 µs as one trip.
 */
export function preparingPgliteStatements(pg: PGlite, { capacity = 256 } = {}): PGlite {
  // A trip binds up to four statements (BEGIN, the actor statement, one the work put ahead of its own,
  // the work's first): preparing the last must not evict the others.
  if (capacity < 4) throw new RangeError("capacity must hold the four statements of one trip");
  const statements = new Statements(capacity);
  const view = Object.create(pg) as PGlite;
  // PGlite's methods reach its private state through `this`: they must run on the instance itself.
  view.query = pg.query.bind(pg);
  view.transaction = <T>(work: (tx: Transaction) => Promise<T>) => {
    // Drizzle starts the transaction synchronously, while the actor statement is on offer.
    const prologue = takePrologue();
    return pg._runExclusiveTransaction(() =>
      new PipelinedTransaction(pg, statements, prologue?.statements ?? []).run(work),
    );
  };
  return view;
}

/** What the statements' first Describe told us, kept for every later execution. */
interface Prepared {
  name: string;
  paramTypes: number[];
  fields: Array<{ name: string; dataTypeID: number }>;
}

/** The parts of PGlite's parsed backend messages this module reads. */
interface BackendMessage {
  name: string;
  dataTypeIDs?: number[];
  fields?: Array<{ name: string; dataTypeID: number }> | Array<string | null>;
  text?: string;
}

/** A statement that goes into the WASM module ahead of the next one, its result unread. */
interface Leading {
  text: string;
  params: unknown[];
}

const BEGIN: Leading = { text: "begin", params: [] };

/**
 * One transaction on PGlite. Opened lazily: BEGIN and the leading statements go with the first
 * statement the work runs (a work that runs none costs nothing). Once a statement failed, Postgres
 * refuses the rest of the transaction and COMMIT answers ROLLBACK, which is reported as an error as
 * PGlite's own `transaction` does: nothing resolves as committed that was not.
 */
class PipelinedTransaction {
  private opened = false;
  private closed = false;

  constructor(
    private readonly pg: PGlite,
    private readonly statements: Statements,
    private readonly leading: Leading[],
  ) {}

  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await work(this.view());
    } catch (error) {
      if (this.opened) await this.end("rollback").catch(() => {});
      throw error;
    } finally {
      this.closed = true;
    }
    if (this.opened && (await this.end("commit")) === "ROLLBACK")
      throw new Error("the transaction was rolled back: a statement in it failed");
    return result;
  }

  /** What drizzle's PGlite session uses of a transaction: `query` (and `closed`, for PGlite's type). */
  private view(): Transaction {
    const transaction = this;
    return {
      query: <T>(text: string, params: unknown[] = [], options?: QueryOptions) => {
        if (this.closed) throw new Error("Transaction is closed");
        const leading = this.opened ? [] : [BEGIN, ...this.leading];
        this.opened = true;
        return this.pg._runExclusiveQuery(() =>
          runPrepared<T>(this.pg, this.statements, leading, text, params, options),
        );
      },
      get closed() {
        return transaction.closed;
      },
    } as Transaction;
  }

  /** Commits or rolls back; the command tag Postgres answered (ROLLBACK for a failed transaction). */
  private async end(text: "commit" | "rollback") {
    const result = await this.pg._runExclusiveQuery(() =>
      runPrepared(this.pg, this.statements, [], text, [], undefined),
    );
    return result.command;
  }
}

async function runPrepared<T>(
  pg: PGlite,
  statements: Statements,
  leading: Leading[],
  text: string,
  params: unknown[],
  options: QueryOptions | undefined,
): Promise<Results<T> & { command: string | undefined }> {
  const steps = [...leading, { text, params }];
  const prepared: Prepared[] = [];
  for (const step of steps)
    prepared.push(statements.use(step.text) ?? (await prepare(pg, statements, step.text)));
  const messages = (await pg.execProtocolStream(
    Buffer.concat([
      ...steps.flatMap((step, i) => [
        serialize.bind({
          statement: prepared[i]!.name,
          values: serialized(pg, prepared[i]!, step.params, options),
        }),
        serialize.execute({}),
      ]),
      serialize.sync(),
    ]),
    { syncToFs: false },
  )) as BackendMessage[];
  // The leading statements' results come first, each ended by its commandComplete.
  let start = 0;
  for (let done = 0; done < leading.length; start++) if (messages[start]?.name === "commandComplete") done++;
  return toResults<T>(pg, messages.slice(start), prepared.at(-1)!.fields, options);
}

function serialized(pg: PGlite, prepared: Prepared, params: unknown[], options: QueryOptions | undefined) {
  return params.map((value, i) => {
    if (value === null || value === undefined) return null;
    const type = prepared.paramTypes[i] ?? 0;
    const serializer = options?.serializers?.[type] ?? pg.serializers[type];
    return serializer ? serializer(value) : String(value);
  });
}

async function prepare(pg: PGlite, statements: Statements, text: string): Promise<Prepared> {
  const name = statements.nextName();
  const evicted = statements.evictable();
  const messages = (await pg.execProtocolStream(
    Buffer.concat([
      ...(evicted ? [serialize.close({ type: "S", name: evicted.name })] : []),
      serialize.parse({ name, text }),
      serialize.describe({ type: "S", name }),
      serialize.sync(),
    ]),
    { syncToFs: false },
  )) as BackendMessage[];
  if (evicted) statements.forget(evicted.text);
  const prepared: Prepared = {
    name,
    paramTypes: messages.find((m) => m.name === "parameterDescription")?.dataTypeIDs ?? [],
    fields: ((messages.find((m) => m.name === "rowDescription")?.fields ?? []) as Prepared["fields"]).map(
      ({ name, dataTypeID }) => ({ name, dataTypeID }),
    ),
  };
  statements.set(text, prepared);
  return prepared;
}

/** Commands whose completion tag ends in the number of rows they changed. */
const ROW_COUNTING = new Set(["INSERT", "UPDATE", "DELETE", "COPY", "MERGE"]);

/**
 * The same result PGlite's `query` builds (rows parsed by type, as arrays or objects), and the command
 * tag of the statement. Each column's parser is looked up once per call (the call's own, else the
 * instance's), where PGlite merges both parser tables into a new object on every query.
 */
function toResults<T>(
  pg: PGlite,
  messages: BackendMessage[],
  fields: Prepared["fields"],
  options: QueryOptions | undefined,
): Results<T> & { command: string | undefined } {
  const parsers = fields.map(({ dataTypeID }) => options?.parsers?.[dataTypeID] ?? pg.parsers[dataTypeID]);
  const parse = (value: string | null, i: number) => {
    if (value === null) return null;
    const type = fields[i]!.dataTypeID;
    const parser = parsers[i];
    return parser ? parser(value, type) : types.parseType(value, type);
  };
  const rows: unknown[] = [];
  let affectedRows = 0;
  let command: string | undefined;
  for (const message of messages) {
    if (message.name === "dataRow") {
      const values = (message.fields as Array<string | null>).map(parse);
      rows.push(
        options?.rowMode === "array"
          ? values
          : Object.fromEntries(values.map((value, i) => [fields[i]!.name, value])),
      );
    } else if (message.name === "commandComplete") {
      const words = (message.text ?? "").split(" ");
      command = words[0];
      const count = Number.parseInt(words.at(-1) ?? "", 10);
      if (ROW_COUNTING.has(words[0] ?? "") && !Number.isNaN(count)) affectedRows += count;
    }
  }
  return { rows: rows as T[], fields, affectedRows, command };
}

/**
 * Prepared statements by SQL text, least recently used first. Bounded: drizzle writes an `IN` list
 * with one placeholder per value, so batched reads of varying size are distinct statements, and each
 * keeps a plan in the database's memory.
 */
class Statements {
  private readonly byText = new Map<string, Prepared>();
  private created = 0;

  constructor(private readonly capacity: number) {}

  use(text: string): Prepared | undefined {
    const prepared = this.byText.get(text);
    if (prepared) {
      this.byText.delete(text);
      this.byText.set(text, prepared);
    }
    return prepared;
  }

  nextName(): string {
    return `wedsync_${++this.created}`;
  }

  /** The statement to close before preparing another, when full. */
  evictable(): { text: string; name: string } | undefined {
    if (this.byText.size < this.capacity) return undefined;
    const [text, prepared] = this.byText.entries().next().value ?? [];
    return text === undefined || prepared === undefined ? undefined : { text, name: prepared.name };
  }

  forget(text: string) {
    this.byText.delete(text);
  }

  set(text: string, prepared: Prepared) {
    this.byText.set(text, prepared);
  }
}
