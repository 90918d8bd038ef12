import postgres from "postgres";

/**
 * Orders operations that serialize on a channel row deterministically: one connection holds the row's
 * lock in an open transaction while the operations queue up behind it (first come, first served), another
 * watches how many backends wait, then the holder lets them go.
 */
export class RowLocks {
  private readonly locker: postgres.Sql;
  private readonly observer: postgres.Sql;

  constructor(url: string) {
    this.locker = postgres(url, { max: 1, onnotice: () => {} });
    this.observer = postgres(url, { max: 1, onnotice: () => {} });
  }

  /** Holds the channel row's lock (as an append does) until the returned function is called. */
  async holdChannelRow(channelId: string) {
    const reserved = await this.locker.reserve();
    await reserved`begin`;
    await reserved`select 1 from websocket_channels where id = ${channelId} for no key update`;
    return async () => {
      await reserved`commit`;
      reserved.release();
    };
  }

  /** Resolves once `n` backends of the database wait for a lock, i.e. have queued behind the holder. */
  async waiters(n: number) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [row] = await this.observer<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      if ((row?.n ?? 0) >= n) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} lock waiters`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async end() {
    await this.locker.end();
    await this.observer.end();
  }
}
