import type { ChannelRow, ChannelStore, ChannelStores, StoreActor } from "@wedsync/db";
import { describe, expect, it } from "vitest";
import { batchHeads, coalesce, rowInterner, withCoalescedReads } from "../src/coalesced-reads.ts";

describe("coalesced reads", () => {
  it("calls with one key in one turn share a read that starts after all of them", async () => {
    let version = 0;
    const starts: number[] = [];
    const read = coalesce(async (key) => {
      starts.push(version);
      return `${key}@${version}`;
    });
    const first = read("a");
    version = 1; // a write that completes after the first call, before the read starts
    const second = read("a");
    const other = read("b");
    expect(await Promise.all([first, second, other])).toEqual(["a@1", "a@1", "b@1"]);
    expect(starts).toEqual([1, 1]);
  });

  it("a call made while a read runs never joins it: it waits for the next read", async () => {
    let release: () => void = () => {};
    let version = 0;
    let reads = 0;
    const read = coalesce(async () => {
      reads++;
      const seen = version;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return seen;
    });
    const first = read("k");
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toBe(1);
    version = 1;
    const second = read("k");
    const third = read("k");
    release();
    expect(await first).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await Promise.all([second, third])).toEqual([1, 1]);
    expect(reads).toBe(2);
  });

  it("a failed read fails every caller that shared it, and the next call reads again", async () => {
    let fail = true;
    const read = coalesce(async (key) => {
      if (fail) throw new Error("database down");
      return key;
    });
    const results = await Promise.allSettled([read("x"), read("x")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect(await read("x")).toBe("x");
  });
});

describe("batched channel heads", () => {
  it("one query per turn for every channel asked for; each caller gets its own rows", async () => {
    const queries: string[][] = [];
    const heads = batchHeads(async (ids) => {
      queries.push([...ids]);
      return ids.filter((id) => id !== "gone").map((id) => ({ id, lastSeq: id.length }));
    });
    const [a, b, c] = await Promise.all([heads(["one"]), heads(["three", "gone"]), heads(["one", "three"])]);
    expect(queries).toEqual([["one", "three", "gone"]]);
    expect(a).toEqual([{ id: "one", lastSeq: 3 }]);
    expect(b).toEqual([{ id: "three", lastSeq: 5 }]);
    expect(c).toEqual([
      { id: "one", lastSeq: 3 },
      { id: "three", lastSeq: 5 },
    ]);
    await heads(["one"]);
    expect(queries).toHaveLength(2);
  });
});

describe("row interning", () => {
  const row = (lastSeq: number, metadata: Record<string, unknown> = { a: 1 }) => ({
    id: "c1",
    lastSeq,
    createdAt: new Date(1_000),
    metadata,
  });

  it("hands out the first copy while the content is the same, a new one once it changed", () => {
    const intern = rowInterner<ReturnType<typeof row>>();
    const first = intern("ch", row(1))!;
    expect(intern("ch", row(1))).toBe(first);
    const changed = intern("ch", row(2))!;
    expect(changed).not.toBe(first);
    expect(changed.lastSeq).toBe(2);
    expect(intern("ch", row(2, { a: 2 }))?.metadata).toEqual({ a: 2 });
    // Gone: forgotten, and a recreated channel is not confused with the old row.
    expect(intern("ch", undefined)).toBeUndefined();
    const recreated = row(2, { a: 2 });
    expect(intern("ch", recreated)).toBe(recreated);
  });

  it("keeps at most `capacity` keys", () => {
    const intern = rowInterner<ReturnType<typeof row>>(2);
    const a = intern("a", row(1))!;
    intern("b", row(1));
    intern("c", row(1));
    expect(intern("a", row(1))).not.toBe(a);
  });
});

describe("withCoalescedReads", () => {
  /** Each actor's view finds the channel only if it is that actor's (as row level security would). */
  function fakeStores(reads: string[]): ChannelStores {
    return {
      as(actor: StoreActor) {
        const who = actor.kind === "user" ? actor.sub : actor.kind;
        return {
          async findChannel(name: string) {
            reads.push(`${who}:${name}`);
            return name.endsWith(who) ? ({ name, id: name } as unknown as ChannelRow) : undefined;
          },
        } as unknown as ChannelStore;
      },
    };
  }
  const user = (sub: string): StoreActor => ({
    kind: "user",
    sub,
    role: "couple",
    suppliers: [],
    couples: [],
    venues: [],
  });

  it("never shares a read between actors: each sees what the database shows it", async () => {
    const reads: string[] = [];
    const stores = withCoalescedReads(fakeStores(reads));
    const [amy, eve, amyAgain] = await Promise.all([
      stores.as(user("amy")).findChannel("couple:dashboard:amy"),
      stores.as(user("eve")).findChannel("couple:dashboard:amy"),
      stores.as(user("amy")).findChannel("couple:dashboard:amy"),
    ]);
    expect(amy?.name).toBe("couple:dashboard:amy");
    expect(amyAgain).toBe(amy);
    expect(eve).toBeUndefined();
    expect(reads.sort()).toEqual(["amy:couple:dashboard:amy", "eve:couple:dashboard:amy"]);
  });
});
