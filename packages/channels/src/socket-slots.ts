import { TRPCError } from "@trpc/server";
import type { OutboundSocket } from "./slow-consumer.ts";

/**
 * Live subscriptions per WebSocket, against CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION. The count is
 * kept on the socket itself: a WeakMap from sockets took a new key per connect (an identity hash and
 * an ephemeron entry, which every full GC then has to trace), at a cost that showed in connect storms.
 */
export class SocketSlots {
  constructor(
    private readonly max: number,
    private readonly onRefused: () => void,
  ) {}

  /** Reserves one of the socket's slots (a call without a socket needs none); TOO_MANY_REQUESTS when all are taken. */
  take(socket: OutboundSocket | undefined) {
    if (!socket) return;
    const used = socket.subscriptionSlots ?? 0;
    if (used >= this.max) {
      this.onRefused();
      throw new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: `a connection may hold at most ${this.max} live subscriptions`,
      });
    }
    socket.subscriptionSlots = used + 1;
  }

  /** Gives back a slot `take` reserved. */
  release(socket: OutboundSocket | undefined) {
    if (socket) socket.subscriptionSlots = (socket.subscriptionSlots ?? 1) - 1;
  }
}
