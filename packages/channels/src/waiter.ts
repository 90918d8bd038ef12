/** One reader waiting for "something happened", woken by a producer or by an abort. */
export class Waiter {
  private wakeUp: (() => void) | undefined;

  /** Resolves on the next wake() or when the signal aborts; never rejects. */
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.wakeUp = undefined;
        resolve();
      };
      this.wakeUp = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  wake() {
    this.wakeUp?.();
  }
}
