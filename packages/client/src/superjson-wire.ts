import superjson from "superjson";

/**
 * Decodes a superjson payload received off the wire, cheaply. The frame was just parsed and belongs
 * to nobody else, so nothing is copied:
 * - without `meta`, `json` already is the value;
 * - with only Dates in `meta` (every channel message has its `sentAt`), they are revived in place,
 *   skipping superjson's general walk, which costs more than the rest of a message's handling;
 * - anything else (Maps, BigInts, referential equalities, escaped keys) goes to superjson, in place.
 */
export function fromWire(payload: unknown): unknown {
  if (payload === null || typeof payload !== "object") return payload;
  const { json, meta } = payload as { json: unknown; meta?: unknown };
  if (meta === undefined) return json;
  if (reviveDatesOnly(json, meta)) return json;
  return superjson.deserialize(payload as Parameters<typeof superjson.deserialize>[0], { inPlace: true });
}

/**
 * Encodes a value for the wire as superjson would. A plain JSON value (what a subscription's input
 * is: strings and numbers in plain objects) is superjson's `{ json }` as it is, without superjson's
 * walk, which cost more than the rest of sending a subscription; anything else goes to superjson.
 */
export function toWire(value: unknown): unknown {
  return isPlainJson(value, new Set()) ? { json: value } : superjson.serialize(value);
}

/**
 * Values superjson passes through untouched and without a `meta` annotation: no value it annotates
 * (undefined, a Date, NaN, -0, a Map...), no object that is not plain, no object met twice (superjson
 * records shared references).
 */
function isPlainJson(value: unknown, seen: Set<object>): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== "object" || seen.has(value) || seen.size > 100) return false;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], seen)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (UNSAFE_KEYS.has(key) || !isPlainJson((value as Parent)[key], seen)) return false;
  }
  return true;
}

const splitPaths = new Map<string, string[]>();
const MAX_CACHED_PATHS = 1_000;

function keysOf(path: string): string[] {
  let keys = splitPaths.get(path);
  if (keys === undefined) {
    keys = path.split(".");
    if (splitPaths.size < MAX_CACHED_PATHS) splitPaths.set(path, keys);
  }
  return keys;
}

type Parent = Record<string, unknown>;

/** Keys whose assignment could reach a prototype: left to superjson, which guards against them. */
const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** The object owning the last key of `keys` as a string, or undefined if the path does not lead to one. */
function parentOf(root: unknown, keys: string[]): Parent | undefined {
  let node = root;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (node === null || typeof node !== "object" || UNSAFE_KEYS.has(key) || !Object.hasOwn(node, key))
      return undefined;
    if (i === keys.length - 1)
      return typeof (node as Parent)[key] === "string" ? (node as Parent) : undefined;
    node = (node as Parent)[key];
  }
  return undefined;
}

/**
 * Handles `meta` of the exact form `{ values: { "a.b": ["Date"], ... }, v?: n }` and returns true;
 * returns false, having changed nothing, for any other form.
 */
function reviveDatesOnly(json: unknown, meta: unknown): boolean {
  if (meta === null || typeof meta !== "object") return false;
  for (const key in meta) if (key !== "values" && key !== "v") return false;
  const values = (meta as { values?: unknown }).values;
  if (values === null || typeof values !== "object" || Array.isArray(values)) return false;
  const annotations = values as Record<string, unknown>;
  // Check everything first, so that a payload this cannot handle reaches superjson untouched.
  for (const path in annotations) {
    const annotation = annotations[path];
    if (!Array.isArray(annotation) || annotation.length !== 1 || annotation[0] !== "Date") return false;
    if (path.includes("\\") || parentOf(json, keysOf(path)) === undefined) return false;
  }
  for (const path in annotations) {
    const keys = keysOf(path);
    const parent = parentOf(json, keys)!;
    const key = keys.at(-1)!;
    parent[key] = new Date(parent[key] as string);
  }
  return true;
}
