/** Channel names and users shared by every system (the baselines accept any string; WedSync checks them). */
import type { BenchUser } from "./systems/types.ts";

/** A supplier's private dashboard channel: `supplier:dashboard:s<i>`. */
export const dashboardChannel = (supplier: number) => `supplier:dashboard:s${supplier}`;

/** One wedding's shared channel: `collaboration:s<k mod suppliers>:c<k>`. */
export const weddingChannel = (wedding: number, suppliers: number) =>
  `collaboration:s${wedding % suppliers}:c${wedding}`;

/** The supplier id a channel name belongs to (both patterns above). */
export function supplierOf(channel: string): string {
  const [scope, entity, id] = channel.split(":");
  if (scope === "supplier" && entity === "dashboard" && id) return id;
  if (scope === "collaboration" && entity) return entity;
  throw new Error(`the bench does not know who owns ${channel}`);
}

/** A member of the channel's supplier. */
export const memberOf = (id: string, channel: string): BenchUser => ({
  id,
  suppliers: [supplierOf(channel)],
});

/** A user who may publish on all of `channels` (a token holds at most 500 supplier ids). */
export function publisherFor(id: string, channels: string[]): BenchUser {
  const suppliers = [...new Set(channels.map(supplierOf))];
  if (suppliers.length > 500) throw new Error("a publisher token can name at most 500 suppliers");
  return { id, suppliers };
}
