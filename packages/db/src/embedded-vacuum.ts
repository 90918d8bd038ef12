import type { PGlite } from "@electric-sql/pglite";

/**
 * PGlite is Postgres in single-user mode: it has no autovacuum, so without this nothing ever gives back
 * the space of deleted and updated rows. Measured on PGlite 0.5.16 (5 rounds of 20,000 appends on 20
 * channels, each round expired and deleted by retention): the message table held no live row and still
 * grew by 2.4 MB a round, to 12 MB, and the channel table (20 rows; every append updates its channel's
 * head) by 0.54 MB a round; with a vacuum after each round both stayed at their first round's size.
 *
 * So the embedded store vacuums itself by autovacuum's own rules, read from the same settings: a table is
 * due when its dead rows pass autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x its rows,
 * when the rows inserted since its last vacuum pass the insert pair of settings, or when its oldest
 * unfrozen transaction id is older than autovacuum_freeze_max_age. Only due tables are vacuumed, because a
 * vacuum runs on the event loop here: 88-106 ms for a message table of 1,000,000 rows with 10-20% of them
 * deleted, 8 ms with 1% (Postgres then skips the indexes), 98 ms for the whole database with nothing to do.
 */
export async function vacuumDueTables(client: PGlite): Promise<string[]> {
  // Row counts reach the statistics views at most once a second; the next statement's end flushes them.
  await client.query("select pg_stat_force_next_flush()");
  const { rows } = await client.query<{ name: string }>(DUE_TABLES);
  const names = rows.map((row) => row.name);
  if (names.length > 0) await client.exec(`vacuum ${names.join(", ")}`);
  return names;
}

/** The tables of the current schema autovacuum would vacuum now, as quoted identifiers. */
const DUE_TABLES = `
select quote_ident(s.relname) as name
from pg_stat_user_tables s
join pg_class c on c.oid = s.relid
where s.schemaname = current_schema()
  and (
    s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
      + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
    -- -1 turns the insert rule off, as it does for autovacuum.
    or (current_setting('autovacuum_vacuum_insert_threshold')::float8 >= 0
      and s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
        + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * greatest(c.reltuples, 0))
    or age(c.relfrozenxid) > current_setting('autovacuum_freeze_max_age')::float8
  )
order by s.relname`;
