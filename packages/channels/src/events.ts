import { z } from "zod";
import { segmentSchema } from "./channel-name.ts";
import { toPlainText } from "./sanitize.ts";

const plainText = (max: number) => z.string().max(max).transform(toPlainText);
const fieldKey = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "field names are 1-64 characters of A-Z, a-z, 0-9, _ . or -");
const fieldValue = z.union([
  plainText(10_000),
  z.number().finite(),
  z.boolean(),
  z.null(),
  z.array(plainText(1_000)).max(100),
]);

/** Payload schema per event name. Payloads are plain JSON (dates as ISO strings) so replay equals live. */
export const eventPayloads = {
  "message.posted": z.strictObject({ text: plainText(4_000).pipe(z.string().min(1)) }),
  "timeline.updated": z.strictObject({
    itemId: segmentSchema,
    title: plainText(200).pipe(z.string().min(1)),
    startsAt: z.iso.datetime({ offset: true }).optional(),
    note: plainText(2_000).optional(),
  }),
  "venue.changed": z.strictObject({
    venueId: segmentSchema,
    change: plainText(2_000).pipe(z.string().min(1)),
    note: plainText(2_000).optional(),
  }),
  "form.response": z.strictObject({
    formId: segmentSchema,
    submissionId: segmentSchema,
    fields: z
      .unknown()
      // JSON.parse makes "__proto__" an own key, which a record would otherwise drop silently.
      .refine(
        (raw) => typeof raw !== "object" || raw === null || !Object.hasOwn(raw, "__proto__"),
        "reserved field name",
      )
      .pipe(z.record(fieldKey, fieldValue))
      .refine((fields) => Object.keys(fields).length <= 200, "at most 200 fields"),
  }),
  "journey.milestone": z.strictObject({
    milestoneId: segmentSchema,
    status: z.string().regex(/^[a-z_]{1,32}$/, "status is 1-32 characters of a-z or _"),
    note: plainText(2_000).optional(),
  }),
} as const;

export type EventName = keyof typeof eventPayloads;
export const eventNames = Object.keys(eventPayloads) as EventName[];

const entry = <E extends EventName>(event: E) =>
  z.object({ event: z.literal(event), payload: eventPayloads[event] });

/**
 * `{event, payload}` checked against the registry; an unknown event name is a validation error.
 * Spelled out per event so that the type ties each payload to its event (a mapped array would not).
 */
export const eventSchema = z.discriminatedUnion("event", [
  entry("message.posted"),
  entry("timeline.updated"),
  entry("venue.changed"),
  entry("form.response"),
  entry("journey.milestone"),
]);
export type ChannelEvent = z.output<typeof eventSchema>;
