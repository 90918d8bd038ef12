import { z } from "zod";
import { storeActorOf } from "../identity.ts";
import { adminProcedure, router } from "./trpc.ts";

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

export const adminRouter = router({
  stats: adminProcedure.query(({ ctx }) => ctx.services.stats.snapshot()),

  /** The same figures every `intervalMs`, with per-second rates since the previous sample. */
  onStats: adminProcedure
    .input(
      z
        .object({ intervalMs: z.number().int().min(250).max(60_000).default(2_000) })
        .default({ intervalMs: 2_000 }),
    )
    .subscription(async function* ({ ctx, input, signal }) {
      const abort = signal ?? new AbortController().signal;
      const { stats } = ctx.services;
      let previous = await stats.snapshot();
      while (!abort.aborted) {
        await sleep(input.intervalMs, abort);
        if (abort.aborted) break;
        const current = await stats.snapshot();
        const seconds = input.intervalMs / 1000;
        const rate = (now: number, before: number) => Math.max(0, now - before) / seconds;
        yield {
          ...current,
          rates: {
            instanceBroadcastsPerSecond: rate(
              current.instance.broadcastsTotal,
              previous.instance.broadcastsTotal,
            ),
            instanceDeliveriesPerSecond: rate(
              current.instance.deliveriesTotal,
              previous.instance.deliveriesTotal,
            ),
            clusterBroadcastsPerSecond: rate(
              current.cluster.broadcastsTotal,
              previous.cluster.broadcastsTotal,
            ),
            clusterDeliveriesPerSecond: rate(
              current.cluster.deliveriesTotal,
              previous.cluster.deliveriesTotal,
            ),
          },
        };
        previous = current;
      }
    }),

  audit: adminProcedure
    .input(
      z
        .object({
          limit: z.number().int().min(1).max(500).default(100),
          beforeId: z.number().int().positive().optional(),
          channelName: z.string().max(300).optional(),
        })
        .default({ limit: 100 }),
    )
    .query(async ({ ctx, input }) => {
      const rows = await ctx.services.stores.as(storeActorOf(ctx.identity)).readAudit(input);
      const last = rows.at(-1);
      return { entries: rows, nextBeforeId: rows.length === input.limit && last ? last.id : null };
    }),
});
