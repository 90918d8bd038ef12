import { adminRouter } from "./admin-router.ts";
import { channelRouter } from "./channel-router.ts";
import { presenceRouter } from "./presence-router.ts";
import { queueRouter } from "./queue-router.ts";
import { router } from "./trpc.ts";

export const appRouter = router({
  channel: channelRouter,
  queue: queueRouter,
  presence: presenceRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
