/**
 * A statement a transaction must run before anything else (the actor statement), handed to the
 * database driver's `begin` so it can go out in the same write as BEGIN and the transaction's first
 * statement instead of costing a round trip of its own.
 *
 * Drizzle's `transaction()` calls the driver's `begin` synchronously and has no way to pass it
 * anything, so the statement is handed over through this slot for the duration of that synchronous
 * call. A driver that does not take it (PGlite) leaves `sent` false and the caller runs it itself.
 */
export interface Prologue {
  text: string;
  params: unknown[];
  /** Set by the driver when it takes the statement: it then runs before anything else, or the transaction fails. */
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

/** For the driver's `begin`: the statement on offer, if any, now marked as taken. */
export function takePrologue(): Prologue | undefined {
  const prologue = offered;
  offered = undefined;
  if (prologue) prologue.sent = true;
  return prologue;
}
