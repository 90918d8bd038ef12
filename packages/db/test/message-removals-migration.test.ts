import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { afterAll, describe, expect, it } from "vitest";
import { DrizzleChannelStores } from "../src/drizzle-channel-store.ts";
import { preparingPgliteStatements } from "../src/pglite-prepared-statements.ts";
import * as schema from "../src/schema.ts";
import { SERVICE_ACTOR } from "../src/store-actor.ts";

const MIGRATIONS = fileURLToPath(new URL("../drizzle", import.meta.url));
const made: string[] = [];

/** A copy of the migrations with the journal cut before `tag`: a database as it was before that one. */
function migrationsBefore(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), "wedsync-migrations-"));
  made.push(dir);
  cpSync(MIGRATIONS, dir, { recursive: true });
  const journalPath = join(dir, "meta/_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: Array<{ tag: string }> };
  const at = journal.entries.findIndex((entry) => entry.tag === tag);
  if (at < 0) throw new Error(`no migration ${tag}`);
  journal.entries = journal.entries.slice(0, at);
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

describe("migration 0004_message_removals", () => {
  it("records what cleanup deleted before it existed, so the queued count stays the stored count", async () => {
    const client = new PGlite();
    await migrate(drizzle({ client }), { migrationsFolder: migrationsBefore("0004_message_removals") });
    // One channel whose seqs 1-3 an earlier cleanup deleted (4 stored, 5 stored but expired), one
    // that lost nothing (1 and 2 stored).
    await client.exec(`
      insert into websocket_channels (id, channel_name, channel_type, scope, entity, entity_id, created_by, last_seq)
      values ('00000000-0000-4000-8000-000000000001', 'couple:dashboard:a', 'private', 'couple', 'dashboard', 'a', 'u', 5),
             ('00000000-0000-4000-8000-000000000002', 'couple:dashboard:b', 'private', 'couple', 'dashboard', 'b', 'u', 2);
      insert into channel_message_queue (channel_id, seq, event, payload, sender_id, expires_at)
      values ('00000000-0000-4000-8000-000000000001', 4, 'message.posted', '{}', 'u', now() + interval '1 hour'),
             ('00000000-0000-4000-8000-000000000001', 5, 'message.posted', '{}', 'u', now() - interval '1 hour'),
             ('00000000-0000-4000-8000-000000000002', 1, 'message.posted', '{}', 'u', now() + interval '1 hour'),
             ('00000000-0000-4000-8000-000000000002', 2, 'message.posted', '{}', 'u', now() + interval '1 hour');`);

    await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS });
    const db = drizzle({ client: preparingPgliteStatements(client), schema });
    const store = new DrizzleChannelStores(db).as(SERVICE_ACTOR);

    expect(await store.queuedMessages(new Date())).toBe(3);
    expect(await store.deleteExpiredMessages(new Date())).toBe(1);
    expect(await store.queuedMessages(new Date())).toBe(3);
    await client.close();
  });
});
