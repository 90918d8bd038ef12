import type { ChannelMessage, ChannelReset } from "@wedsync/channels";
import type { ChannelsClient } from "./channels-client.ts";

export interface FollowHandlers {
  /** Called once per message, in channel order; acknowledged once it returns (a throw stops the follow). */
  onMessage(message: ChannelMessage): void | Promise<void>;
  /** What was missed is older than retention: refetch the channel's state. */
  onReset?(reset: ChannelReset): void;
  /** The stream ended for good (e.g. FORBIDDEN after a revoke). */
  onError?(error: unknown): void;
}

export interface FollowOptions {
  /** How often handled messages are acknowledged (the cursor moves to the newest). */
  ackEveryMs?: number;
}

export interface Following {
  /** Stops the stream and acknowledges what was handled so far. */
  stop(): Promise<void>;
}

/**
 * Follows a channel durably: subscribes (keeping the server-side delivery cursor), streams
 * everything after the cursor and then live messages, hands each to the app once and in order,
 * and acknowledges what the app has handled so the cursor (and `queue.pending`) moves on.
 */
export async function followChannel(
  client: ChannelsClient,
  channelName: string,
  handlers: FollowHandlers,
  options: FollowOptions = {},
): Promise<Following> {
  const { trpc } = client;
  const { subscription } = await trpc.channel.subscribe.mutate({ channelName });
  let handled: string | undefined;
  let acked: string | undefined;
  let chain = Promise.resolve();
  let failed = false;

  const ack = async () => {
    const newest = handled;
    if (newest === undefined || newest === acked) return;
    await trpc.queue.ack.mutate({ messageIds: [newest] });
    acked = newest;
  };
  const timer = setInterval(() => void ack().catch(() => {}), options.ackEveryMs ?? 1_000);
  timer.unref?.();

  const stream = trpc.channel.events.subscribe(
    { channelName, lastEventId: subscription.resumeFrom },
    {
      onData: ({ id, data }) => {
        // Handlers run one at a time, in order, even when they are async. A handler that throws
        // stops the follow: acknowledging later messages would acknowledge the failed one too.
        chain = chain.then(async () => {
          if (failed) return;
          try {
            if (data.type === "reset") handlers.onReset?.(data);
            else await handlers.onMessage(data);
            handled = id;
          } catch (error) {
            failed = true;
            stream.unsubscribe();
            clearInterval(timer);
            handlers.onError?.(error);
          }
        });
      },
      onError: (error) => {
        clearInterval(timer);
        handlers.onError?.(error);
      },
    },
  );

  return {
    async stop() {
      stream.unsubscribe();
      clearInterval(timer);
      await chain;
      await ack();
    },
  };
}
