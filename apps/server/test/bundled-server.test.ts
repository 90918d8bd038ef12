import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@wedsync/channels";
import { type ChannelsClient, createChannelsClient } from "@wedsync/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./cluster/cluster.ts";
import { events, fullClaims, post, randomSecret, text, uid } from "./harness.ts";
import { SERVER_DIR, SERVER_PROGRAM } from "./server-program.ts";

/** What `npm start` deploys: the bundle, on the embedded default, as a separate process. */
describe("the bundled server (what npm start runs)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "wedsync-bundle-"));
  const secret = randomSecret();
  let child: ChildProcess;
  let output = "";
  let url: string;
  let client: ChannelsClient;
  const s = uid("s");

  beforeAll(async () => {
    url = `http://127.0.0.1:${await freePort()}`;
    child = spawn(process.execPath, SERVER_PROGRAM, {
      cwd: SERVER_DIR,
      env: {
        ...process.env,
        PORT: new URL(url).port,
        CHANNELS_DATA_DIR: dataDir,
        CHANNELS_JWT_SECRET: secret,
        DATABASE_URL: "",
        REDIS_URL: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    const deadline = Date.now() + 25_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the bundle exited during start:\n${output}`);
      const ready = await fetch(`${url}/readyz`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`the bundle was not ready after 25 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const token = await mintToken(
      secret,
      fullClaims({ sub: uid("owner"), role: "supplier", suppliers: [s] }),
    );
    client = createChannelsClient({ url, token });
  });

  afterAll(async () => {
    await client?.close();
    if (child?.exitCode === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("stores a broadcast in its PGlite store and delivers it over a WebSocket subscription", async () => {
    const { name: channelName } = await client.trpc.channel.create.mutate({
      scope: "supplier",
      entity: "dashboard",
      entityId: s,
    });
    const stream = events(client, channelName);
    await stream.started;
    const { seq } = await post(client, channelName, "ceremony moved to 15:30");
    const [item] = await stream.until(1);
    expect(item?.data).toMatchObject({ type: "message", seq, channel: channelName });
    expect(stream.messages().map(text)).toEqual(["ceremony moved to 15:30"]);
    stream.unsubscribe();
  });

  it("leaves no name-keeping wrapper around the server's functions", () => {
    const bundle = readFileSync(join(SERVER_DIR, "dist/main.mjs"), "utf8");
    expect(bundle).toContain("new ChannelStream(");
    expect(bundle).not.toMatch(/__name\(/);
  });

  it("shuts down cleanly on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("shutting down");
  });
});
