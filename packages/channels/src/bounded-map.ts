/**
 * Sets `key` in a map kept to `capacity` entries: a new key in a full map first drops the oldest
 * (the first in insertion order). What the caches here share.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, capacity: number): void {
  if (map.size >= capacity && !map.has(key)) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
