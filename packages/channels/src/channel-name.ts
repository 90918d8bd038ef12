import { z } from "zod";
import { setBounded } from "./bounded-map.ts";

export const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
export const segmentSchema = z.string().regex(SEGMENT, "must be 1-64 characters of A-Z, a-z, 0-9, _ or -");

export type ChannelType = "private" | "shared" | "broadcast";

/** One row of the rules table in DESIGN.md, as a parsed channel name. */
export type ChannelAddress =
  | { kind: "supplier-dashboard"; supplierId: string }
  | { kind: "couple-dashboard"; coupleId: string }
  | { kind: "collaboration"; supplierId: string; coupleId: string }
  | { kind: "form-response"; formId: string; submissionId: string }
  | { kind: "journey-milestone"; coupleId: string; milestoneId: string }
  | { kind: "venue-broadcast"; venueId: string };

/** Read-only: procedure inputs share one parse per name (see channelNameSchema). */
export interface ParsedChannelName {
  readonly name: string;
  readonly scope: string;
  readonly entity: string;
  readonly entityId: string;
  readonly type: ChannelType;
  readonly address: Readonly<ChannelAddress>;
}

const MAX_NAME_LENGTH = 4 * 65;

function build(address: ChannelAddress, type: ChannelType, parts: string[]): ParsedChannelName {
  const [scope = "", entity = "", ...rest] = parts;
  return { name: parts.join(":"), scope, entity, entityId: rest.join(":"), type, address };
}

/** Returns the parsed name, or a reason a person can read. */
export function parseChannelName(name: string): ParsedChannelName | { error: string } {
  if (name.length > MAX_NAME_LENGTH) return { error: "channel name is too long" };
  const parts = name.split(":");
  const bad = parts.find((p) => !SEGMENT.test(p));
  if (bad !== undefined)
    return { error: `segment "${bad.slice(0, 64)}" must be 1-64 characters of A-Z, a-z, 0-9, _ or -` };
  const [scope, entity, a, b] = parts;
  switch (`${scope}:${parts.length}`) {
    case "supplier:3":
      if (entity === "dashboard")
        return build({ kind: "supplier-dashboard", supplierId: a! }, "private", parts);
      break;
    case "couple:3":
      if (entity === "dashboard") return build({ kind: "couple-dashboard", coupleId: a! }, "private", parts);
      break;
    case "collaboration:3":
      return build({ kind: "collaboration", supplierId: entity!, coupleId: a! }, "shared", parts);
    case "form:4":
      if (entity === "response")
        return build({ kind: "form-response", formId: a!, submissionId: b! }, "shared", parts);
      break;
    case "journey:4":
      if (entity === "milestone")
        return build({ kind: "journey-milestone", coupleId: a!, milestoneId: b! }, "shared", parts);
      break;
    case "venue:3":
      if (entity === "broadcast") return build({ kind: "venue-broadcast", venueId: a! }, "broadcast", parts);
      break;
  }
  return {
    error:
      "unknown channel pattern; expected supplier:dashboard:{id}, couple:dashboard:{id}, collaboration:{supplierId}:{coupleId}, " +
      "form:response:{formId}:{submissionId}, journey:milestone:{coupleId}:{milestoneId} or venue:broadcast:{venueId}",
  };
}

/**
 * Valid names parsed so far, frozen and shared: every subscriber of a channel keeps the same parse
 * instead of its own (about 0.3 KiB per subscribed connection, heap snapshots of 2,000), and a
 * connect storm parses each name once. Bounded: past KNOWN_NAMES the oldest is dropped.
 */
const knownNames = new Map<string, ParsedChannelName>();
const KNOWN_NAMES = 10_000;

function knownChannelName(name: string): ParsedChannelName | { error: string } {
  const known = knownNames.get(name);
  if (known !== undefined) return known;
  const parsed = parseChannelName(name);
  if ("error" in parsed) return parsed;
  Object.freeze(parsed.address);
  Object.freeze(parsed);
  setBounded(knownNames, name, parsed, KNOWN_NAMES);
  return parsed;
}

/** A zod schema for channel names in procedure inputs: rejects anything outside the rules table. */
export const channelNameSchema = z
  .string()
  .max(MAX_NAME_LENGTH)
  .transform((name, ctx) => {
    const parsed = knownChannelName(name);
    if ("error" in parsed) {
      ctx.addIssue({ code: "custom", message: parsed.error });
      return z.NEVER;
    }
    return parsed;
  });
