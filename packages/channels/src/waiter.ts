import type { StopSignal } from "./stop-signal.ts";

/**
 * One reader waiting for "something happened", woken by a producer or by an abort. The Waiter is
 * itself the abort listener (`handleEvent`): an idle stream always has a wait pending, and this
 * keeps it to the promise and one listener entry, with no closures per wait.
 */
export class Waiter {
  private resolve: (() => void) | undefined;
  private signal: StopSignal | undefined;

  /** Resolves on the next wake() or when the signal aborts; never rejects. */
  wait(signal: StopSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    // A wait replacing one that is still pending settles it first, as a wake would.
    this.wake();
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.signal = signal;
      signal.addEventListener("abort", this, { once: true });
    });
  }

  wake() {
    const { resolve, signal } = this;
    if (!resolve) return;
    this.resolve = undefined;
    this.signal = undefined;
    signal?.removeEventListener("abort", this);
    resolve();
  }

  /** The abort listener. */
  handleEvent() {
    this.wake();
  }
}
