import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { beforeWrite } from "../src/turn-cork.ts";

/** A socket that records each write it makes: one entry per syscall a net.Socket would make. */
function recordingSocket() {
  const writes: string[][] = [];
  const socket = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push([chunk.toString()]);
      done();
    },
    writev(chunks, done) {
      writes.push(chunks.map(({ chunk }) => (chunk as Buffer).toString()));
      done();
    },
  });
  return { socket, writes };
}

const send = (writer: { lastWriteTurn: number }, socket: Writable, frame: string) => {
  beforeWrite(writer, socket);
  socket.write(frame);
};

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe("turn cork", () => {
  it("sends a turn's first frame at once and the rest of the turn's frames together, in order", async () => {
    const { socket, writes } = recordingSocket();
    const writer = { lastWriteTurn: -1 };
    send(writer, socket, "a");
    expect(writes).toEqual([["a"]]);
    send(writer, socket, "b");
    send(writer, socket, "c");
    await Promise.resolve();
    // Frames written by promise jobs of the same turn join them.
    send(writer, socket, "d");
    expect(writes).toEqual([["a"]]);
    await nextTick();
    expect(writes).toEqual([["a"], ["b", "c", "d"]]);
  });

  it("holds nothing across turns, nor for sockets written once", async () => {
    const first = recordingSocket();
    const second = recordingSocket();
    const writer = { lastWriteTurn: -1 };
    const other = { lastWriteTurn: -1 };
    send(writer, first.socket, "a");
    send(other, second.socket, "x");
    await nextTick();
    send(writer, first.socket, "b");
    expect(first.writes).toEqual([["a"], ["b"]]);
    expect(second.writes).toEqual([["x"]]);
    expect(first.socket.writableCorked).toBe(0);
  });

  it("flushes what a socket held when it ends within the turn", async () => {
    const { socket, writes } = recordingSocket();
    const writer = { lastWriteTurn: -1 };
    send(writer, socket, "a");
    send(writer, socket, "b");
    socket.end("bye");
    await nextTick();
    expect(writes.flat()).toEqual(["a", "b", "bye"]);
  });
});
