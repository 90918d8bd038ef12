import { mintToken } from "@wedsync/channels";
import type { ChannelsClient } from "@wedsync/client";
import { errorCode } from "@wedsync/client";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Claims,
  codeOf,
  events,
  eventually,
  fullClaims,
  randomSecret,
  startTestServer,
  type TestServer,
  uid,
} from "./harness.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

const posted = (channelName: string, body = "hello") =>
  ({ channelName, event: "message.posted", payload: { text: body } }) as const;

/** The four channel-level calls an outsider might try, each reduced to its tRPC error code. */
async function channelCallCodes(client: ChannelsClient, channelName: string) {
  const stream = events(client, channelName);
  const codes = {
    subscribe: await codeOf(client.trpc.channel.subscribe.mutate({ channelName })),
    events: await stream.failure(),
    broadcast: await codeOf(client.trpc.channel.broadcast.mutate(posted(channelName))),
    subscribers: await codeOf(client.trpc.channel.subscribers.query({ channelName })),
  };
  expect(stream.items).toEqual([]);
  return codes;
}

const all = (code: string) => ({ subscribe: code, events: code, broadcast: code, subscribers: code });

describe("outsiders", () => {
  /** Per channel kind: who may create it (the insider) and someone outside its audience. */
  const kinds: Array<{
    kind: string;
    setup: () => {
      name: string;
      create: Parameters<ChannelsClient["trpc"]["channel"]["create"]["mutate"]>[0];
      insider: Claims;
      outsider: Claims;
    };
  }> = [
    {
      kind: "supplier:dashboard",
      setup: () => {
        const s = uid("s");
        return {
          name: `supplier:dashboard:${s}`,
          create: { scope: "supplier", entity: "dashboard", entityId: s },
          insider: { sub: uid("u"), role: "supplier", suppliers: [s] },
          outsider: { sub: uid("u"), role: "supplier", suppliers: [uid("other")] },
        };
      },
    },
    {
      kind: "couple:dashboard",
      setup: () => {
        const c = uid("c");
        return {
          name: `couple:dashboard:${c}`,
          create: { scope: "couple", entity: "dashboard", entityId: c },
          insider: { sub: uid("u"), role: "couple", couples: [c] },
          // A supplier working with the couple still has no access to the couple's private dashboard.
          outsider: { sub: uid("u"), role: "supplier", suppliers: [c] },
        };
      },
    },
    {
      kind: "collaboration",
      setup: () => {
        const s = uid("s");
        const c = uid("c");
        return {
          name: `collaboration:${s}:${c}`,
          create: { scope: "collaboration", entity: s, entityId: c },
          insider: { sub: uid("u"), role: "couple", couples: [c] },
          outsider: { sub: uid("u"), role: "couple", couples: [uid("c")], suppliers: [] },
        };
      },
    },
    {
      kind: "journey:milestone",
      setup: () => {
        const c = uid("c");
        const m = uid("m");
        return {
          name: `journey:milestone:${c}:${m}`,
          create: { scope: "journey", entity: "milestone", entityId: `${c}:${m}` },
          insider: { sub: uid("u"), role: "couple", couples: [c] },
          outsider: { sub: uid("u"), role: "couple", couples: [uid("c")] },
        };
      },
    },
    {
      kind: "venue:broadcast",
      setup: () => {
        const v = uid("v");
        return {
          name: `venue:broadcast:${v}`,
          create: { scope: "venue", entity: "broadcast", entityId: v },
          insider: { sub: uid("u"), role: "coordinator", venues: [v] },
          outsider: { sub: uid("u"), role: "coordinator", venues: [uid("v")] },
        };
      },
    },
    {
      kind: "form:response",
      setup: () => {
        const f = uid("f");
        const sub = uid("sub");
        return {
          name: `form:response:${f}:${sub}`,
          create: { scope: "form", entity: "response", entityId: `${f}:${sub}` },
          insider: { sub: uid("u"), role: "supplier", suppliers: [uid("s")] },
          outsider: { sub: uid("u"), role: "supplier", suppliers: [uid("s")] },
        };
      },
    },
  ];

  for (const { kind, setup } of kinds) {
    it(`${kind}: FORBIDDEN on subscribe, events, broadcast and subscribers, whether or not the channel exists`, async () => {
      const { name, create, insider, outsider } = setup();
      const intruder = server.client(outsider);
      const owner = server.client(insider);

      // Before the channel exists: the same answer as after, so existence does not leak.
      expect(await channelCallCodes(intruder, name)).toEqual(all("FORBIDDEN"));

      const created = await owner.trpc.channel.create.mutate(create);
      expect(created.name).toBe(name);
      await owner.trpc.channel.subscribe.mutate({ channelName: name });
      await owner.trpc.channel.broadcast.mutate(posted(name, "for insiders only"));
      expect(await channelCallCodes(intruder, name)).toEqual(all("FORBIDDEN"));

      // The outsider's attempts neither wrote anything nor subscribed anyone.
      const subscribers = await owner.trpc.channel.subscribers.query({ channelName: name });
      expect(subscribers.map((s) => s.userId)).toEqual([insider.sub]);
      const [listed] = (await owner.trpc.channel.list.query()).filter((c) => c.name === name);
      expect(listed?.lastSeq).toBe(1);
      expect(await intruder.trpc.channel.list.query()).toEqual([]);
      expect(await intruder.trpc.queue.pending.query()).toEqual([]);
    });
  }

  it("the FORBIDDEN message is the same for an existing and a missing channel", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    const intruder = server.client({ sub: uid("u"), role: "supplier", suppliers: [uid("s")] });
    const missing = `supplier:dashboard:${uid("s")}`;
    const existing = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const message = async (name: string) => {
      try {
        await intruder.trpc.channel.subscribers.query({ channelName: name });
      } catch (error) {
        return { code: errorCode(error), text: (error as Error).message.replace(name, "<name>") };
      }
      throw new Error("expected FORBIDDEN");
    };
    const [forExisting, forMissing] = [await message(existing), await message(missing)];
    expect(forExisting.code).toBe("FORBIDDEN");
    expect(forMissing).toEqual(forExisting);
    expect(forMissing.text).not.toMatch(/exist|not found/i);
  });

  it("a member gets NOT_FOUND for a channel that does not exist", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    expect(await channelCallCodes(member, `supplier:dashboard:${s}`)).toEqual(all("NOT_FOUND"));
    const c = uid("c");
    const couple = server.client({ sub: uid("u"), role: "couple", couples: [c] });
    expect(await channelCallCodes(couple, `collaboration:${uid("s")}:${c}`)).toEqual(all("NOT_FOUND"));
  });

  it("a form response channel belongs to its creator; nobody else can read it or take it over", async () => {
    const f = uid("f");
    const creator = server.client({ sub: uid("u"), role: "supplier" });
    const other = server.client({ sub: uid("u"), role: "supplier" });
    const name = `form:response:${f}:s1`;
    const created = await creator.trpc.channel.create.mutate({
      scope: "form",
      entity: "response",
      entityId: `${f}:s1`,
    });
    expect(created.name).toBe(name);
    expect(
      await codeOf(
        other.trpc.channel.create.mutate({ scope: "form", entity: "response", entityId: `${f}:s1` }),
      ),
    ).toBe("FORBIDDEN");
    const { id, seq } = await creator.trpc.channel.broadcast.mutate({
      channelName: name,
      event: "form.response",
      payload: { formId: f, submissionId: "s1", fields: { guests: 2, vegan: true } },
    });
    expect(seq).toBe(1);
    expect(id).toEqual(expect.any(String));
    expect(await channelCallCodes(other, name)).toEqual(all("FORBIDDEN"));
  });
});

describe("authentication", () => {
  const claims: Claims = { sub: "auth-user", role: "supplier", suppliers: ["auth-s"] };

  async function badTokens(): Promise<Record<string, string>> {
    const malformedClaims = await new SignJWT({ role: "superuser" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("x")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(server.secret));
    const withoutExpiry = await new SignJWT({ role: "supplier" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("x")
      .sign(new TextEncoder().encode(server.secret));
    return {
      "no token": "",
      garbage: "not-a-jwt",
      "another secret": await mintToken(randomSecret(), fullClaims(claims)),
      expired: await server.token(claims, "1 minute ago"),
      "malformed claims": malformedClaims,
      "no exp": withoutExpiry,
    };
  }

  it("every procedure answers UNAUTHORIZED over HTTP and WebSocket for a missing or bad token", async () => {
    const s = "auth-s";
    const good = server.client(claims);
    const channelName = (
      await good.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;

    for (const [label, token] of Object.entries(await badTokens())) {
      const client = server.clientWithToken(token);
      const codes = {
        label,
        list: await codeOf(client.trpc.channel.list.query()),
        create: await codeOf(
          client.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s }),
        ),
        subscribe: await codeOf(client.trpc.channel.subscribe.mutate({ channelName })),
        broadcast: await codeOf(client.trpc.channel.broadcast.mutate(posted(channelName))),
        pending: await codeOf(client.trpc.queue.pending.query()),
        stats: await codeOf(client.trpc.admin.stats.query()),
        events: await events(client, channelName).failure(),
      };
      expect(codes).toEqual({
        label,
        list: "UNAUTHORIZED",
        create: "UNAUTHORIZED",
        subscribe: "UNAUTHORIZED",
        broadcast: "UNAUTHORIZED",
        pending: "UNAUTHORIZED",
        stats: "UNAUTHORIZED",
        events: "UNAUTHORIZED",
      });
      await client.close();
    }
    // None of those attempts reached the channel: nothing was broadcast, nobody subscribed.
    expect(await good.trpc.channel.subscribers.query({ channelName })).toEqual([]);
    const { subscription } = await good.trpc.channel.subscribe.mutate({ channelName });
    expect(subscription.cursorSeq).toBe(0);
  });

  it("a raw HTTP request without Authorization is a 401", async () => {
    const response = await fetch(`${server.url}/trpc/channel.list`);
    expect(response.status).toBe(401);
    const body = (await response.json()) as { error: { json: { data: { code: string } } } };
    expect(body.error.json.data.code).toBe("UNAUTHORIZED");
  });
});

describe("namespaces", () => {
  it("creating a channel in another supplier's or couple's namespace is FORBIDDEN", async () => {
    const mine = uid("s");
    const theirs = uid("s");
    const myCouple = uid("c");
    const supplier = server.client({ sub: uid("u"), role: "supplier", suppliers: [mine] });
    const couple = server.client({ sub: uid("u"), role: "couple", couples: [myCouple] });

    const attempts = {
      otherSupplierDashboard: await codeOf(
        supplier.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: theirs }),
      ),
      otherSupplierCollaboration: await codeOf(
        supplier.trpc.channel.create.mutate({ scope: "collaboration", entity: theirs, entityId: uid("c") }),
      ),
      coupleDashboardBySupplier: await codeOf(
        supplier.trpc.channel.create.mutate({ scope: "couple", entity: "dashboard", entityId: myCouple }),
      ),
      otherCoupleDashboard: await codeOf(
        couple.trpc.channel.create.mutate({ scope: "couple", entity: "dashboard", entityId: uid("c") }),
      ),
      otherCoupleMilestone: await codeOf(
        couple.trpc.channel.create.mutate({
          scope: "journey",
          entity: "milestone",
          entityId: `${uid("c")}:m1`,
        }),
      ),
      supplierDashboardByCouple: await codeOf(
        couple.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: mine }),
      ),
    };
    expect(attempts).toEqual({
      otherSupplierDashboard: "FORBIDDEN",
      otherSupplierCollaboration: "FORBIDDEN",
      coupleDashboardBySupplier: "FORBIDDEN",
      otherCoupleDashboard: "FORBIDDEN",
      otherCoupleMilestone: "FORBIDDEN",
      supplierDashboardByCouple: "FORBIDDEN",
    });

    // The same users may create in their own namespaces; both sides may open their collaboration.
    await supplier.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: mine });
    await couple.trpc.channel.create.mutate({ scope: "couple", entity: "dashboard", entityId: myCouple });
    const collab = await couple.trpc.channel.create.mutate({
      scope: "collaboration",
      entity: mine,
      entityId: myCouple,
    });
    expect(collab.createdBy).not.toBe("");
    // A forbidden create left nothing behind: the owner of that namespace finds no such channel.
    const owner = server.client({ sub: uid("u"), role: "supplier", suppliers: [theirs] });
    expect(
      await codeOf(owner.trpc.channel.subscribers.query({ channelName: `supplier:dashboard:${theirs}` })),
    ).toBe("NOT_FOUND");
  });

  it("create is idempotent: the same channel, with its first creator, however often it is created", async () => {
    const s = uid("s");
    const first = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    const colleague = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    const input = { scope: "supplier", entity: "dashboard", entityId: s, metadata: { label: "first" } };
    const a = await first.trpc.channel.create.mutate(input);
    const b = await first.trpc.channel.create.mutate(input);
    const c = await colleague.trpc.channel.create.mutate({ ...input, metadata: { label: "second" } });
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => colleague.trpc.channel.create.mutate(input)),
    );
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    for (const again of concurrent) expect(again).toEqual(a);
    expect(a).toMatchObject({
      name: `supplier:dashboard:${s}`,
      type: "private",
      scope: "supplier",
      entity: "dashboard",
      entityId: s,
      metadata: { label: "first" },
    });
    expect(a.createdAt).toBeInstanceOf(Date);
  });
});

describe("venue broadcasts", () => {
  it("only venue members publish; everyone else is FORBIDDEN, even with the venue id in another role", async () => {
    const v = uid("v");
    const coordinator = server.client({ sub: uid("u"), role: "coordinator", venues: [v] });
    const couple = server.client({ sub: uid("u"), role: "couple", couples: [v] });
    const supplier = server.client({ sub: uid("u"), role: "supplier", suppliers: [v] });
    const name = `venue:broadcast:${v}`;

    expect(
      await codeOf(couple.trpc.channel.create.mutate({ scope: "venue", entity: "broadcast", entityId: v })),
    ).toBe("FORBIDDEN");
    const created = await coordinator.trpc.channel.create.mutate({
      scope: "venue",
      entity: "broadcast",
      entityId: v,
    });
    expect(created.type).toBe("broadcast");

    const change = {
      channelName: name,
      event: "venue.changed",
      payload: { venueId: v, change: "Ceremony moved to the garden" },
    } as const;
    expect(await codeOf(couple.trpc.channel.broadcast.mutate(change))).toBe("FORBIDDEN");
    expect(await codeOf(supplier.trpc.channel.broadcast.mutate(change))).toBe("FORBIDDEN");
    const sent = await coordinator.trpc.channel.broadcast.mutate(change);
    expect(sent.seq).toBe(1);

    // The refused publishes stored nothing: the coordinator's message is the only one.
    await coordinator.trpc.channel.subscribe.mutate({ channelName: name });
    const [listed] = (await coordinator.trpc.channel.list.query()).filter((c) => c.name === name);
    expect(listed?.lastSeq).toBe(1);
  });
});

describe("admins", () => {
  it("admins get FORBIDDEN on payload procedures but can read admin.stats; others cannot", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    // An admin token that even lists the supplier as a membership: the role still wins.
    const admin = server.client({ sub: uid("admin"), role: "admin", suppliers: [s] });
    const name = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    const { id } = await member.trpc.channel.broadcast.mutate(posted(name, "payload admins must not see"));

    const stream = events(admin, name, id);
    expect({
      create: await codeOf(
        admin.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s }),
      ),
      subscribe: await codeOf(admin.trpc.channel.subscribe.mutate({ channelName: name })),
      broadcast: await codeOf(admin.trpc.channel.broadcast.mutate(posted(name))),
      events: await stream.failure(),
    }).toEqual({ create: "FORBIDDEN", subscribe: "FORBIDDEN", broadcast: "FORBIDDEN", events: "FORBIDDEN" });
    expect(stream.items).toEqual([]);
    expect(await admin.trpc.queue.pending.query()).toEqual([]);

    const stats = await admin.trpc.admin.stats.query();
    expect(stats.instanceId).toBe(server.instance.services.instanceId);
    expect(stats.channels).toBeGreaterThanOrEqual(1);
    expect(stats.instance.broadcastsTotal).toBeGreaterThanOrEqual(1);
    expect(stats.cluster).toMatchObject({ instances: 1, broadcastsTotal: stats.instance.broadcastsTotal });
    expect(JSON.stringify(stats)).not.toContain("payload admins must not see");

    expect(await codeOf(member.trpc.admin.stats.query())).toBe("FORBIDDEN");
    expect(await codeOf(member.trpc.admin.audit.query())).toBe("FORBIDDEN");
    const coordinator = server.client({ sub: uid("u"), role: "coordinator", venues: [uid("v")] });
    expect(await codeOf(coordinator.trpc.admin.stats.query())).toBe("FORBIDDEN");
  });

  it("the audit log shows refused attempts to admins, without payloads", async () => {
    const s = uid("s");
    const member = server.client({ sub: uid("u"), role: "supplier", suppliers: [s] });
    const intruderId = uid("intruder");
    const intruder = server.client({ sub: intruderId, role: "supplier", suppliers: [uid("s")] });
    const admin = server.client({ sub: uid("admin"), role: "admin" });
    const name = (
      await member.trpc.channel.create.mutate({ scope: "supplier", entity: "dashboard", entityId: s })
    ).name;
    await member.trpc.channel.broadcast.mutate(posted(name, "secret seating plan"));
    expect(await codeOf(intruder.trpc.channel.broadcast.mutate(posted(name)))).toBe("FORBIDDEN");

    const audit = await eventually(
      () => admin.trpc.admin.audit.query({ channelName: name }),
      (page) => page.entries.some((e) => e.actorId === intruderId),
      "the refused broadcast in the audit log",
    );
    const refused = audit.entries.find((e) => e.actorId === intruderId);
    expect(refused).toMatchObject({ action: "broadcast", outcome: "denied", channelName: name });
    expect(JSON.stringify(audit)).not.toContain("secret seating plan");
  });
});
