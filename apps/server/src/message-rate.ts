import type { WebSocket } from "ws";

export const MESSAGE_RATE_CLOSE_CODE = 1008;

/**
 * Closes a connection that sends more than `perSecond` messages in any one-second window: a
 * flood from one socket must not starve the others (tRPC has no per-connection limit).
 */
export function capMessageRate(ws: WebSocket, perSecond: number, onExceeded: () => void) {
  let windowStart = Date.now();
  let count = 0;
  ws.on("message", () => {
    const now = Date.now();
    if (now - windowStart >= 1_000) {
      windowStart = now;
      count = 0;
    }
    if (++count === perSecond + 1) {
      onExceeded();
      ws.close(MESSAGE_RATE_CLOSE_CODE, `more than ${perSecond} messages per second`);
    }
  });
}
