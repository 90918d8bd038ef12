/**
 * Statements a transaction must run before anything else (the actor statement, and any the work needs
 * ahead of its own, such as a lock), handed to the database driver's `begin` so they can go out in the
 * same write as BEGIN and the transaction's first statement instead of costing a round trip each.
 *
 * Drizzle's `transaction()` calls the driver's `begin` synchronously and has no way to pass it
 * anything, so the statements are handed over through this slot for the duration of that synchronous
 * call. A driver that does not take them (PGlite) leaves `sent` false and the caller runs them itself.
 */
export interface Prologue {
  /** In order: each runs after the one before it, and all before the work's first statement. */
  statements: Array<{ text: string; params: unknown[] }>;
  /** Set by the driver when it takes the statements: they then run first, or the transaction fails. */
  sent: boolean;
}

let offered: Prologue | undefined;

/** Calls `start` (which must begin the transaction synchronously) with `prologue` on offer. */
export function offerPrologue<T>(prologue: Prologue, start: () => T): T {
  offered = prologue;
  try {
    return start();
  } finally {
    offered = undefined;
  }
}

/** For the driver's `begin`: the statements on offer, if any, now marked as taken. */
export function takePrologue(): Prologue | undefined {
  const prologue = offered;
  offered = undefined;
  if (prologue) prologue.sent = true;
  return prologue;
}
