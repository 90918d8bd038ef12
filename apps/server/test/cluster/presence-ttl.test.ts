import type { PresenceEvent } from "@wedsync/channels";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { events, eventually, uid } from "../harness.ts";
import { type Cluster, clusterPrerequisites, Resources, startCluster } from "./cluster.ts";

const SUITE = "cluster: presence after kill -9";
const prerequisites = clusterPrerequisites(SUITE, []);
const TTL_MS = 1_500;

describe.skipIf(!prerequisites)(SUITE, () => {
  const resources = new Resources();
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster(resources, {
      ...prerequisites!,
      count: 2,
      env: { CHANNELS_PRESENCE_TTL_MS: String(TTL_MS) },
    });
  }, 60_000);

  afterAll(() => resources.release(), 60_000);

  it("a killed instance's users drop out of presence by TTL, and watchers on other instances hear them leave", async () => {
    const [survivor, victim] = cluster.servers as [Cluster["servers"][0], Cluster["servers"][0]];
    const s = uid("s");
    const owner = await cluster.client(survivor.url, { sub: uid("owner"), role: "supplier", suppliers: [s] });
    const channelName = (
      await owner.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const watched: PresenceEvent[] = [];
    await new Promise<void>((started) => {
      owner.trpc.presence.events.subscribe(
        { channelName },
        { onStarted: () => started(), onData: (event) => watched.push(event) },
      );
    });

    const ghostId = uid("on-victim");
    const ghost = await cluster.client(
      victim.url,
      { sub: ghostId, role: "supplier", suppliers: [s] },
      () => 600_000,
    );
    const stream = events(ghost, channelName);
    await stream.started;
    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list.some((u) => u.userId === ghostId),
      "the victim's user online",
    );

    const killedAt = Date.now();
    await victim.kill9();
    await eventually(
      () => owner.trpc.presence.list.query({ channelName }),
      (list) => list.length === 0,
      "presence to expire",
      TTL_MS * 6,
    );
    const goneAfter = Date.now() - killedAt;
    await eventually(
      async () => watched.filter((e) => e.userId === ghostId).map((e) => e.action),
      (actions) => actions.join(",") === "join,leave",
      "a leave event from the sweep",
      TTL_MS * 6,
    );
    console.log(`[${SUITE}] presence gone ${goneAfter} ms after kill -9 (TTL ${TTL_MS} ms)`);
    expect(goneAfter).toBeLessThan(TTL_MS * 6);
  });
});
