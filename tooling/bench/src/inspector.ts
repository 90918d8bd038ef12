/**
 * A full garbage collection in a server process without touching its code: servers are started with
 * `--inspect-port`, SIGUSR1 switches the inspector on, and HeapProfiler.collectGarbage runs over it.
 * Idle memory is then retained memory, not whatever garbage happened to be around.
 */
import WebSocket from "ws";
import { sleep, withTimeout } from "./clock.ts";

/** The node flag that reserves an inspector port without opening it. */
export const inspectPortFlag = (port: number) => `--inspect-port=127.0.0.1:${port}`;

async function debuggerUrl(port: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
        webSocketDebuggerUrl: string;
      }>;
      if (targets[0]) return targets[0].webSocketDebuggerUrl;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`inspector on port ${port} did not open: ${(error as Error).message}`);
    }
    await sleep(100);
  }
}

export async function collectGarbage(pid: number, port: number, rounds = 2): Promise<void> {
  process.kill(pid, "SIGUSR1");
  const socket = new WebSocket(await debuggerUrl(port, 5_000));
  await new Promise<void>((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  try {
    for (let id = 1; id <= rounds; id++) {
      const done = new Promise<void>((resolve) => {
        socket.on("message", (data) => {
          if ((JSON.parse(data.toString()) as { id?: number }).id === id) resolve();
        });
      });
      socket.send(JSON.stringify({ id, method: "HeapProfiler.collectGarbage" }));
      await withTimeout(done, 30_000, "HeapProfiler.collectGarbage");
    }
  } finally {
    socket.close();
  }
}
