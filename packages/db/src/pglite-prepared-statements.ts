import { type PGlite, type QueryOptions, type Results, type Transaction, types } from "@electric-sql/pglite";
import { serialize } from "pg-protocol";

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
 */
export function preparingPgliteStatements(pg: PGlite, { capacity = 256 } = {}): PGlite {
  const statements = new Statements(capacity);
  const view = Object.create(pg) as PGlite;
  // PGlite's methods reach its private state through `this`: they must run on the instance itself.
  view.query = pg.query.bind(pg);
  view.transaction = (work) => pg.transaction((tx) => work(preparedTransaction(pg, tx, statements)));
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

function preparedTransaction(pg: PGlite, tx: Transaction, statements: Statements): Transaction {
  const view = Object.create(tx) as Transaction;
  view.query = <T>(text: string, params: unknown[] = [], options?: QueryOptions) => {
    if (tx.closed) return tx.query<T>(text, params, options);
    return pg._runExclusiveQuery(() => runPrepared<T>(pg, statements, text, params, options));
  };
  return view;
}

async function runPrepared<T>(
  pg: PGlite,
  statements: Statements,
  text: string,
  params: unknown[],
  options: QueryOptions | undefined,
): Promise<Results<T>> {
  const prepared = statements.use(text) ?? (await prepare(pg, statements, text));
  const values = params.map((value, i) => {
    if (value === null || value === undefined) return null;
    const type = prepared.paramTypes[i] ?? 0;
    const serializer = options?.serializers?.[type] ?? pg.serializers[type];
    return serializer ? serializer(value) : String(value);
  });
  const messages = (await pg.execProtocolStream(
    Buffer.concat([
      serialize.bind({ statement: prepared.name, values }),
      serialize.execute({}),
      serialize.sync(),
    ]),
    { syncToFs: false },
  )) as BackendMessage[];
  return toResults<T>(pg, messages, prepared.fields, options);
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
 * The same result PGlite's `query` builds: rows parsed by type, as arrays or objects. Each column's
 * parser is looked up once per call (the call's own, else the instance's), where PGlite merges both
 * parser tables into a new object on every query.
 */
function toResults<T>(
  pg: PGlite,
  messages: BackendMessage[],
  fields: Prepared["fields"],
  options: QueryOptions | undefined,
): Results<T> {
  const parsers = fields.map(({ dataTypeID }) => options?.parsers?.[dataTypeID] ?? pg.parsers[dataTypeID]);
  const parse = (value: string | null, i: number) => {
    if (value === null) return null;
    const type = fields[i]!.dataTypeID;
    const parser = parsers[i];
    return parser ? parser(value, type) : types.parseType(value, type);
  };
  const rows: unknown[] = [];
  let affectedRows = 0;
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
      const count = Number.parseInt(words.at(-1) ?? "", 10);
      if (ROW_COUNTING.has(words[0] ?? "") && !Number.isNaN(count)) affectedRows += count;
    }
  }
  return { rows: rows as T[], fields, affectedRows };
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
