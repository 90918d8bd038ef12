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
 *
 * It analyzes by autovacuum's rule too (rows changed since the last analyze past
 * autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x its rows). Without statistics the
 * planner guesses, and under row level security a wrong guess costs a policy check per row: the oldest
 * retained message of a channel with 300 messages was read by a bitmap scan of all 300, 5.7 ms, and
 * through the primary key in 0.43 ms once the table had been analyzed (EXPLAIN ANALYZE, 2026-12-03).
 */
export async function vacuumDueTables(client: PGlite): Promise<EmbeddedMaintenance> {
  // Row counts reach the statistics views at most once a second; the next statement's end flushes them.
  await client.query("select pg_stat_force_next_flush()");
  const { rows } = await client.query<{ name: string; vacuum_due: boolean; analyze_due: boolean }>(
    DUE_TABLES,
  );
  const vacuumed = rows.filter((row) => row.vacuum_due).map((row) => row.name);
  const analyzed = rows.filter((row) => row.analyze_due).map((row) => row.name);
  if (vacuumed.length > 0) await client.exec(`vacuum ${vacuumed.join(", ")}`);
  if (analyzed.length > 0) await client.exec(`analyze ${analyzed.join(", ")}`);
  return { vacuumed, analyzed };
}

/** The tables (quoted identifiers) the embedded database's own maintenance vacuumed and analyzed. */
export interface EmbeddedMaintenance {
  vacuumed: string[];
  analyzed: string[];
}

/** The tables of the current schema autovacuum would vacuum or analyze now, and which of the two. */
const DUE_TABLES = `
select name, vacuum_due, analyze_due from (
  select
    quote_ident(s.relname) as name,
    s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
      + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
    -- -1 turns the insert rule off, as it does for autovacuum.
    or (current_setting('autovacuum_vacuum_insert_threshold')::float8 >= 0
      and s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
        + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * greatest(c.reltuples, 0))
    or age(c.relfrozenxid) > current_setting('autovacuum_freeze_max_age')::float8 as vacuum_due,
    s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
      + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0) as analyze_due
  from pg_stat_user_tables s
  join pg_class c on c.oid = s.relid
  where s.schemaname = current_schema()
) due
where vacuum_due or analyze_due
order by name`;
