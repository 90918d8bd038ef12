/**
 * Whole WebSocket text frames (RFC 6455 section 5.2: FIN, opcode 1, unmasked as a server sends them),
 * header and payload in one buffer, built once per payload buffer.
 *
 * `ws` sends a frame as two buffers, its header and the payload, corked into one writev: per live
 * delivery that is two Writable writes, a flush of the corked buffers and a writev request on top of
 * the syscall. A live message's payload is one Buffer shared by all its subscribers (wire-format.ts),
 * so its whole frame is built once and each socket gets a single buffer.
 */
const frames = new WeakMap<Buffer, Buffer>();

const FIN_TEXT = 0x81;
const LENGTH_16 = 126;
const LENGTH_64 = 127;

export function textFrame(payload: Buffer): Buffer {
  let frame = frames.get(payload);
  if (frame === undefined) {
    frame = build(payload);
    frames.set(payload, frame);
  }
  return frame;
}

function build(payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < LENGTH_16 ? 2 : length <= 0xffff ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = FIN_TEXT;
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = LENGTH_16;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = LENGTH_64;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, headerLength);
  return frame;
}
