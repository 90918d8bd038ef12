import type { Logger } from "pino";
import type { WebSocket } from "ws";

export interface HealthReport {
  connections: number;
  /** Answered the last ping (or has not been pinged yet). */
  healthy: number;
  /** A ping is out and unanswered, not yet past the timeout. */
  awaitingPong: number;
  /** More queued for sending than the slow-consumer bound. */
  slow: number;
  oldestConnectedAt: Date | null;
}

export interface ConnectionInfo {
  id: string;
  ip: string;
}

interface ConnectionState extends ConnectionInfo {
  connectedAt: number;
  lastSeenAt: number;
  pingSentAt: number | null;
}

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  maxBufferedBytes: number;
  logger: Logger;
  onTerminated?: (reason: string) => void;
}

export const UNRESPONSIVE_CLOSE_REASON = "no pong within the heartbeat timeout";

/**
 * WebSocket-level heartbeats (ping frames, which every client answers without application code):
 * a connection that sends nothing and leaves a ping unanswered for `timeoutMs` is terminated, so
 * its streams end and its presence goes with it. One timer serves all connections.
 */
export class ConnectionHealthMonitor {
  private readonly connections = new Map<WebSocket, ConnectionState>();
  private timer: NodeJS.Timeout | undefined;
  private pingsSent = 0;
  private terminated = 0;

  constructor(private readonly options: HeartbeatOptions) {}

  startHeartbeat() {
    const tick = Math.max(
      25,
      Math.min(1_000, Math.floor(Math.min(this.options.intervalMs, this.options.timeoutMs) / 4)),
    );
    this.timer = setInterval(() => this.beat(), tick);
    this.timer.unref();
  }

  stop() {
    clearInterval(this.timer);
  }

  track(ws: WebSocket, info: ConnectionInfo) {
    const now = Date.now();
    const state: ConnectionState = { ...info, connectedAt: now, lastSeenAt: now, pingSentAt: null };
    this.connections.set(ws, state);
    const alive = () => {
      state.lastSeenAt = Date.now();
      state.pingSentAt = null;
    };
    ws.on("pong", alive);
    ws.on("message", alive);
    ws.once("close", () => this.connections.delete(ws));
  }

  checkConnectionHealth(): HealthReport {
    let awaitingPong = 0;
    let slow = 0;
    let oldest: number | null = null;
    for (const [ws, state] of this.connections) {
      if (state.pingSentAt !== null) awaitingPong++;
      if (ws.bufferedAmount > this.options.maxBufferedBytes) slow++;
      oldest = oldest === null ? state.connectedAt : Math.min(oldest, state.connectedAt);
    }
    return {
      connections: this.connections.size,
      healthy: this.connections.size - awaitingPong,
      awaitingPong,
      slow,
      oldestConnectedAt: oldest === null ? null : new Date(oldest),
    };
  }

  /** Terminates a connection that failed (no pong), logging why; its client reconnects and resumes. */
  handleConnectionFailure(ws: WebSocket, reason: string) {
    const state = this.connections.get(ws);
    this.connections.delete(ws);
    this.terminated++;
    this.options.logger.info(
      {
        connectionId: state?.id,
        ip: state?.ip,
        aliveMs: state ? Date.now() - state.connectedAt : undefined,
        reason,
      },
      "connection terminated",
    );
    this.options.onTerminated?.(reason);
    ws.terminate();
  }

  getConnectionMetrics() {
    return { connections: this.connections.size, pingsSent: this.pingsSent, terminated: this.terminated };
  }

  private beat() {
    const now = Date.now();
    for (const [ws, state] of this.connections) {
      if (state.pingSentAt !== null) {
        if (now - state.pingSentAt >= this.options.timeoutMs)
          this.handleConnectionFailure(ws, UNRESPONSIVE_CLOSE_REASON);
      } else if (now - state.lastSeenAt >= this.options.intervalMs) {
        state.pingSentAt = now;
        this.pingsSent++;
        ws.ping();
      }
    }
  }
}
