const MAX_DEPTH = 16;
const MAX_NODES = 10_000;
/** Keys that rewrite prototypes when copied with plain assignment; JSON.parse makes them own keys. */
const POISON_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Looks at raw request input before any schema copies it: too deep, too many nodes, or a
 * prototype-pollution key anywhere. Returns a reason, or undefined when the input is harmless.
 */
export function findHostileJson(input: unknown): string | undefined {
  let nodes = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value: input, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (++nodes > MAX_NODES) return `input has more than ${MAX_NODES} values`;
    if (typeof value !== "object" || value === null) continue;
    if (depth >= MAX_DEPTH) return `input is nested deeper than ${MAX_DEPTH} levels`;
    if (value instanceof Date) continue;
    for (const key of Object.keys(value)) {
      if (POISON_KEYS.has(key)) return `"${key}" is not allowed as a key`;
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1 });
    }
  }
  return undefined;
}
