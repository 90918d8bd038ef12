import type { StoreActor } from "@wedsync/db";
import { z } from "zod";
import { segmentSchema } from "./channel-name.ts";

const ids = z.array(segmentSchema).max(500).default([]);

/** The claims a token must carry; anything else in the token is ignored. */
export const identityClaimsSchema = z.object({
  sub: z.string().min(1).max(128),
  role: z.enum(["supplier", "couple", "coordinator", "admin"]),
  tier: z.enum(["free", "paid"]).default("free"),
  suppliers: ids,
  couples: ids,
  venues: ids,
});

export type Identity = z.infer<typeof identityClaimsSchema>;

/** The store's view for this user: the database checks the same memberships (row level security). */
export function storeActorOf(identity: Identity): StoreActor {
  return { kind: "user", ...identity };
}
