import { EventEmitter } from "node:events";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import {
  ConnectionHealthMonitor,
  MESSAGE_RATE_CLOSE_CODE,
  TOKEN_EXPIRED_CLOSE_CODE,
} from "../src/connection-health.ts";

/** Just enough of a `ws` WebSocket: records how it was closed and emits close like ws does. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  closedWith: number | undefined;
  close(code: number) {
    if (this.readyState !== 1) return;
    this.readyState = 2;
    this.closedWith = code;
    setImmediate(() => {
      this.readyState = 3;
      this.emit("close", code, Buffer.from(""));
    });
  }
  terminate() {
    this.close(1006);
  }
  ping() {}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const asWs = (socket: FakeSocket) => socket as unknown as WebSocket;

let monitor: ConnectionHealthMonitor | undefined;
afterEach(() => monitor?.stop());

function start(options: { maxMessagesPerSecond?: number } = {}) {
  const closed: number[] = [];
  monitor = new ConnectionHealthMonitor({
    intervalMs: 60_000,
    timeoutMs: 60_000,
    maxBufferedBytes: 1_000,
    maxMessagesPerSecond: options.maxMessagesPerSecond ?? 100,
    logger: pino({ level: "silent" }),
    onClosed: (connection) => closed.push(connection.id),
  });
  return { monitor, closed };
}

describe("connection deadlines (token expiry)", () => {
  it("closes each socket with 4001 at its own deadline, earliest first, one timer for all", async () => {
    const { monitor, closed } = start();
    const late = new FakeSocket();
    const early = new FakeSocket();
    const never = new FakeSocket();
    const lateId = monitor.track(asWs(late), { ip: "a" }).id;
    const earlyId = monitor.track(asWs(early), { ip: "b" }).id;
    monitor.track(asWs(never), { ip: "c" });
    monitor.closeAt(asWs(late), Date.now() + 200);
    // An earlier deadline added later re-arms the timer.
    monitor.closeAt(asWs(early), Date.now() + 50);

    await sleep(120);
    expect(early.closedWith).toBe(TOKEN_EXPIRED_CLOSE_CODE);
    expect(late.closedWith).toBeUndefined();
    await sleep(150);
    expect(late.closedWith).toBe(TOKEN_EXPIRED_CLOSE_CODE);
    expect(never.closedWith).toBeUndefined();
    expect(closed).toEqual([earlyId, lateId]);
    expect(monitor.getConnectionMetrics().connections).toBe(1);
  });

  it("a socket that closed before its deadline is forgotten, and a past deadline closes at once", async () => {
    const { monitor } = start();
    const gone = new FakeSocket();
    monitor.track(asWs(gone), { ip: "a" });
    monitor.closeAt(asWs(gone), Date.now() + 50);
    gone.close(1000);
    await sleep(10);
    expect(monitor.getConnectionMetrics().connections).toBe(0);
    // Closed: a deadline for it is ignored.
    monitor.closeAt(asWs(gone), Date.now());

    const expired = new FakeSocket();
    monitor.track(asWs(expired), { ip: "b" });
    monitor.closeAt(asWs(expired), Date.now() - 1);
    await sleep(20);
    expect(expired.closedWith).toBe(TOKEN_EXPIRED_CLOSE_CODE);
    await sleep(60);
    expect(gone.closedWith).toBe(1000);
  });
});

describe("message-rate cap", () => {
  it("closes a socket with 1008 on the first message over the limit in a one-second window", () => {
    const { monitor } = start({ maxMessagesPerSecond: 3 });
    const socket = new FakeSocket();
    monitor.track(asWs(socket), { ip: "a" });
    for (let i = 0; i < 3; i++) socket.emit("message", Buffer.from("x"), false);
    expect(socket.closedWith).toBeUndefined();
    socket.emit("message", Buffer.from("x"), false);
    expect(socket.closedWith).toBe(MESSAGE_RATE_CLOSE_CODE);
  });
});
