import type { ChannelAddress } from "./channel-name.ts";
import type { Identity } from "./identity.ts";

export type Access = "read" | "publish" | "create";

/** What the policy needs of a stored channel beyond its name. */
export interface ChannelFacts {
  createdBy: string;
}

/**
 * Decides access from the channel name and the token (and, for creator-owned channels, the row).
 * Admins see metadata and metrics, never payloads, so they get no channel access here.
 */
export function isAllowed(
  identity: Identity,
  address: ChannelAddress,
  access: Access,
  facts?: ChannelFacts,
): boolean {
  if (identity.role === "admin") return false;
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
      // Owned by whoever created it; before it exists only creation is open.
      return access === "create"
        ? facts === undefined || facts.createdBy === identity.sub
        : facts?.createdBy === identity.sub;
  }
}
