import { type SQL, sql } from "drizzle-orm";

/**
 * Whom a store call acts for. Every call runs as the database role `wedsync_app` with this actor in
 * per-transaction settings, and the row level security policies of migration 0003 decide from it what
 * the call may see and write.
 */
export type StoreActor =
  | {
      kind: "user";
      sub: string;
      role: "supplier" | "couple" | "coordinator" | "admin";
      suppliers: readonly string[];
      couples: readonly string[];
      venues: readonly string[];
    }
  /** A signed inbound webhook publishing as `senderId`. */
  | { kind: "webhook"; senderId: string }
  /** The server's own jobs: audit writer, cleanup, webhook delivery, head checks, cluster counts. */
  | { kind: "service" };

export const SERVICE_ACTOR: StoreActor = { kind: "service" };

/** The role every query runs under: not the tables' owner, so row level security applies. */
export const APP_ROLE = "wedsync_app";

interface ActorSettings {
  role: string;
  userId: string;
  suppliers: string;
  couples: string;
  venues: string;
}

/** Memberships as ",id1,id2,": the policies test them with one string search (ids never hold commas). */
const list = (ids: readonly string[]) => (ids.length === 0 ? "" : `,${ids.join(",")},`);

function settingsOf(actor: StoreActor): ActorSettings {
  switch (actor.kind) {
    case "user":
      return {
        role: actor.role,
        userId: actor.sub,
        suppliers: list(actor.suppliers),
        couples: list(actor.couples),
        venues: list(actor.venues),
      };
    case "webhook":
      return { role: "webhook", userId: actor.senderId, suppliers: "", couples: "", venues: "" };
    case "service":
      return { role: "service", userId: "", suppliers: "", couples: "", venues: "" };
  }
}

/** Equal for actors the database cannot tell apart (same settings). */
export function settingsKey(actor: StoreActor): string {
  return Object.values(settingsOf(actor)).join("\n");
}

/** The first statement of every store transaction: switch role and state the actor, until commit. */
export function actorStatement(actor: StoreActor): SQL {
  const { role, userId, suppliers, couples, venues } = settingsOf(actor);
  return sql`select set_config('role', ${APP_ROLE}, true), set_config('app.role', ${role}, true),
    set_config('app.user_id', ${userId}, true), set_config('app.suppliers', ${suppliers}, true),
    set_config('app.couples', ${couples}, true), set_config('app.venues', ${venues}, true)`;
}
