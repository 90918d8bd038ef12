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
  ip: string;
}

/** What the monitor keeps of one socket: a plain record, no closures or timers of its own. */
export interface TrackedConnection {
  /** Unique within this process, for logs. */
  readonly id: number;
  readonly ip: string;
  readonly connectedAt: number;
  lastSeenAt: number;
  /** When the unanswered ping went out; 0 when none is out. */
  pingSentAt: number;
  /** Start of the current one-second window of the message-rate cap, and messages in it. */
  windowStart: number;
  messages: number;
  /** When the socket must be closed (its token expires), as epoch ms; Infinity for never. */
  closeAt: number;
}

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  maxBufferedBytes: number;
  /** A socket that sends more messages than this in any one-second window is closed with 1008. */
  maxMessagesPerSecond: number;
  logger: Logger;
  onTerminated?: (reason: string) => void;
  onRateExceeded?: () => void;
  /** After the socket closed and was forgotten (metrics, logs). */
  onClosed?: (connection: TrackedConnection, code: number, reason: Buffer) => void;
}

export const UNRESPONSIVE_CLOSE_REASON = "no pong within the heartbeat timeout";
export const MESSAGE_RATE_CLOSE_CODE = 1008;
export const TOKEN_EXPIRED_CLOSE_CODE = 4001;
const TOKEN_EXPIRED_REASON = "token expired: reconnect with a fresh token";
/** setTimeout's ceiling: a deadline further out is re-checked when this much has passed. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Every socket's bookkeeping in one record and one timer for all of them (a connection costs a map
 * entry, not closures, timers and listener wrappers of its own):
 *
 * - WebSocket-level heartbeats (ping frames, which every client answers without application code):
 *   a connection that sends nothing and leaves a ping unanswered for `timeoutMs` is terminated, so
 *   its streams end and its presence goes with it.
 * - A per-connection message-rate cap: a flood from one socket must not starve the others (tRPC
 *   has no per-connection limit).
 * - Deadlines (token expiry): one timer armed for the earliest, closing the socket with 4001 at
 *   that moment.
 *
 * The listeners are shared by all sockets (`this` is the socket that emitted).
 */
export class ConnectionHealthMonitor {
  private readonly connections = new Map<WebSocket, TrackedConnection>();
  private timer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** When deadlineTimer fires; Infinity when it is not armed. */
  private deadlineArmedAt = Number.POSITIVE_INFINITY;
  private lastId = 0;
  private pingsSent = 0;
  private terminated = 0;
  private stopped = false;
  private readonly onAlive: (this: WebSocket) => void;
  private readonly onMessage: (this: WebSocket) => void;
  private readonly onClose: (this: WebSocket, code: number, reason: Buffer) => void;

  constructor(private readonly options: HeartbeatOptions) {
    const { connections } = this;
    const limit = options.maxMessagesPerSecond;
    this.onAlive = function onAlive(this: WebSocket) {
      const state = connections.get(this);
      if (!state) return;
      state.lastSeenAt = Date.now();
      state.pingSentAt = 0;
    };
    this.onMessage = function onMessage(this: WebSocket) {
      const state = connections.get(this);
      if (!state) return;
      const now = Date.now();
      state.lastSeenAt = now;
      state.pingSentAt = 0;
      if (now - state.windowStart >= 1_000) {
        state.windowStart = now;
        state.messages = 0;
      }
      if (++state.messages === limit + 1) {
        options.onRateExceeded?.();
        this.close(MESSAGE_RATE_CLOSE_CODE, `more than ${limit} messages per second`);
      }
    };
    this.onClose = function onClose(this: WebSocket, code: number, reason: Buffer) {
      const state = connections.get(this);
      if (!state) return;
      connections.delete(this);
      options.onClosed?.(state, code, reason);
    };
  }

  startHeartbeat() {
    const tick = Math.max(
      25,
      Math.min(1_000, Math.floor(Math.min(this.options.intervalMs, this.options.timeoutMs) / 4)),
    );
    this.timer = setInterval(() => this.beat(), tick);
    this.timer.unref();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.deadlineTimer);
    this.deadlineArmedAt = Number.POSITIVE_INFINITY;
  }

  track(ws: WebSocket, info: ConnectionInfo): TrackedConnection {
    const now = Date.now();
    const state: TrackedConnection = {
      id: ++this.lastId,
      ip: info.ip,
      connectedAt: now,
      lastSeenAt: now,
      pingSentAt: 0,
      windowStart: now,
      messages: 0,
      closeAt: Number.POSITIVE_INFINITY,
    };
    this.connections.set(ws, state);
    ws.on("pong", this.onAlive);
    ws.on("message", this.onMessage);
    ws.on("close", this.onClose);
    return state;
  }

  /**
   * Closes the socket with 4001 at `at` (epoch ms) unless it closed before. A socket that is not
   * tracked (already closed) is ignored.
   */
  closeAt(ws: WebSocket, at: number) {
    const state = this.connections.get(ws);
    if (!state) return;
    state.closeAt = at;
    if (at < this.deadlineArmedAt) this.armDeadline(at);
  }

  checkConnectionHealth(): HealthReport {
    let awaitingPong = 0;
    let slow = 0;
    let oldest: number | null = null;
    for (const [ws, state] of this.connections) {
      if (state.pingSentAt !== 0) awaitingPong++;
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
    // The close event (emitted by terminate) forgets the connection.
    ws.terminate();
  }

  getConnectionMetrics() {
    return { connections: this.connections.size, pingsSent: this.pingsSent, terminated: this.terminated };
  }

  private beat() {
    const now = Date.now();
    for (const [ws, state] of this.connections) {
      // Closing already (terminated, rate-capped, expired): its close event forgets it.
      if (ws.readyState !== ws.OPEN) continue;
      if (state.pingSentAt !== 0) {
        if (now - state.pingSentAt >= this.options.timeoutMs)
          this.handleConnectionFailure(ws, UNRESPONSIVE_CLOSE_REASON);
      } else if (now - state.lastSeenAt >= this.options.intervalMs) {
        state.pingSentAt = now;
        this.pingsSent++;
        ws.ping();
      }
    }
  }

  private armDeadline(at: number) {
    clearTimeout(this.deadlineTimer);
    this.deadlineArmedAt = at;
    if (this.stopped) return;
    this.deadlineTimer = setTimeout(
      () => this.closeDue(),
      Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS),
    );
    this.deadlineTimer.unref();
  }

  /** Closes every socket whose deadline has come, then arms the timer for the next one. */
  private closeDue() {
    this.deadlineArmedAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [ws, state] of this.connections) {
      if (state.closeAt <= now) {
        state.closeAt = Number.POSITIVE_INFINITY;
        ws.close(TOKEN_EXPIRED_CLOSE_CODE, TOKEN_EXPIRED_REASON);
      } else if (state.closeAt < next) next = state.closeAt;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armDeadline(next);
  }
}
