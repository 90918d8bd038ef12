import type { ChannelAddress } from "./channel-name.ts";
import type { Identity } from "./identity.ts";

export type Access = "read" | "publish" | "create";

/** What the policy needs of a stored channel beyond its name. */
export interface ChannelFacts {
  createdBy: string;
  /** The caller holds a grant on this channel (channel.grant). */
  granted: boolean;
}

/** The audience a channel's name gives it, from the token's memberships alone. */
function nameAudience(identity: Identity, address: ChannelAddress): boolean {
  const supplier = (id: string) => identity.suppliers.includes(id);
  const couple = (id: string) => identity.couples.includes(id);
  switch (address.kind) {
    case "supplier-dashboard":
      return supplier(address.supplierId);
    case "couple-dashboard":
      return couple(address.coupleId);
    case "collaboration":
      return supplier(address.supplierId) || couple(address.coupleId);
    case "journey-milestone":
      return couple(address.coupleId);
    case "venue-broadcast":
      return identity.venues.includes(address.venueId);
    case "form-response":
      // A form response belongs to whoever created it, not to a name audience.
      return false;
  }
}

/**
 * Decides access from the name and the token, and — only when those do not already allow it —
 * from the stored channel (its creator, the caller's grant). Grants give read everywhere and
 * publish everywhere except venue broadcasts. Admins see metadata and metrics, never payloads.
 */
export function isAllowed(
  identity: Identity,
  address: ChannelAddress,
  access: Access,
  facts?: ChannelFacts,
): boolean {
  if (identity.role === "admin") return false;
  if (nameAudience(identity, address)) return true;
  if (address.kind === "form-response") {
    if (!facts) return access === "create";
    if (facts.createdBy === identity.sub) return true;
  }
  if (!facts?.granted) return false;
  return access !== "publish" || address.kind !== "venue-broadcast";
}

/**
 * Which channels a signed inbound webhook (POST /webhooks/inbound) may publish to. The rules table names
 * "signed webhooks" as publishers of form responses, which external form tools submit. Journey milestones
 * are the other channel kind fed by external systems (planning tools marking a milestone done). Everything
 * else stays closed on purpose: a single shared secret identifies no wedding, so a leaked secret must not
 * let anyone write into dashboards, collaborations or venue announcements of every tenant.
 */
export function webhookMayPublish(address: ChannelAddress): boolean {
  return address.kind === "form-response" || address.kind === "journey-milestone";
}

/** Who may share a channel: its owning members (the name's publishers) or a form's creator; never grantees. */
export function mayGrant(identity: Identity, address: ChannelAddress, createdBy: string): boolean {
  return isAllowed(identity, address, "publish", { createdBy, granted: false });
}
