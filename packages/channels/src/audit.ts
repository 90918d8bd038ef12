import type { ChannelStore, NewAuditRow } from "@wedsync/db";

export type AuditEntry = Omit<NewAuditRow, "id" | "at" | "instanceId">;

/**
 * Buffers audit rows and writes them in batches, off the request path. A failed write is retried
 * with the next batch; the buffer is bounded so a dead database cannot grow memory without limit.
 */
export class AuditTrail {
  private buffer: NewAuditRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ChannelStore,
    private readonly instanceId: string,
    private readonly options = { maxBatch: 200, flushMs: 250, maxBuffered: 50_000 },
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  record(entry: AuditEntry) {
    if (this.buffer.length >= this.options.maxBuffered) this.buffer.shift();
    this.buffer.push({ ...entry, instanceId: this.instanceId, at: new Date() });
    if (this.buffer.length >= this.options.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.options.flushMs);
  }

  /** Writes everything buffered so far; resolves when it is stored. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.options.maxBatch);
        try {
          await this.store.writeAudit(batch);
        } catch (error) {
          this.buffer.unshift(...batch);
          this.onError(error);
          this.timer ??= setTimeout(() => void this.flush(), 1_000);
          return;
        }
      }
    });
    return this.flushing;
  }
}
