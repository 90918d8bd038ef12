import { TRPCError } from "@trpc/server";
import type { OutboundSocket } from "./slow-consumer.ts";

/** Live subscriptions per WebSocket, against CHANNELS_MAX_SUBSCRIPTIONS_PER_CONNECTION. */
export class SocketSlots {
  private readonly used = new WeakMap<OutboundSocket, number>();

  constructor(
    private readonly max: number,
    private readonly onRefused: () => void,
  ) {}

  /** Reserves one of the socket's slots (a call without a socket needs none); TOO_MANY_REQUESTS when all are taken. */
  take(socket: OutboundSocket | undefined) {
    if (!socket) return;
    const used = this.used.get(socket) ?? 0;
    if (used >= this.max) {
      this.onRefused();
      throw new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: `a connection may hold at most ${this.max} live subscriptions`,
      });
    }
    this.used.set(socket, used + 1);
  }

  /** Gives back a slot `take` reserved. */
  release(socket: OutboundSocket | undefined) {
    if (socket) this.used.set(socket, (this.used.get(socket) ?? 1) - 1);
  }
}
