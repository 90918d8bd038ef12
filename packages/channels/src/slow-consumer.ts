import type { StopSignal } from "./stop-signal.ts";

/** What a stream needs of the socket it writes to. */
export interface OutboundSocket {
  readonly bufferedAmount: number;
  /**
   * Writes one text frame with this payload: how live messages reach the socket directly (see
   * ChannelStream.offer). A live frame's payload is one Buffer shared by every subscriber of the
   * message, so what an implementation derives from it can be kept for the next socket.
   */
  sendText(payload: Buffer): void;
  /** The client asked for compact live frames (compact-frame.ts). */
  readonly compactFrames?: boolean;
  close(code: number, reason: string): void;
  /** Its live subscriptions, kept here by SocketSlots (socket-slots.ts). */
  subscriptionSlots?: number;
}

export const SLOW_CONSUMER_CLOSE_CODE = 4008;
const POLL_MS = 20;

export interface SendBufferLimits {
  maxBufferedBytes: number;
  timeoutMs: number;
}

/**
 * Waits while the socket's send buffer is over the bound. Returns true when there is room again;
 * false when the socket stayed over the bound past the timeout, in which case it has been closed
 * with SLOW_CONSUMER_CLOSE_CODE (the client reconnects and resumes from its last event id).
 */
export async function waitForRoom(socket: OutboundSocket, limits: SendBufferLimits, signal: StopSignal) {
  if (socket.bufferedAmount <= limits.maxBufferedBytes) return true;
  const deadline = Date.now() + limits.timeoutMs;
  while (!signal.aborted && socket.bufferedAmount > limits.maxBufferedBytes) {
    if (Date.now() >= deadline) {
      socket.close(SLOW_CONSUMER_CLOSE_CODE, "slow consumer: reconnect and resume from your last event id");
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return !signal.aborted;
}
