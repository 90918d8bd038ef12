/** Counts requests in progress so a shutdown can wait for acknowledged work to finish. */
export class Inflight {
  private count = 0;
  private idle: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.count++;
    try {
      return await work();
    } finally {
      if (--this.count === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Resolves true once nothing is in progress, or false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
