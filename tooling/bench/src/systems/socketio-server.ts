/**
 * Socket.IO 4.8 rooms, WebSocket transport only: "sub" joins a room and acks, "pub" emits to the
 * room and acks the publisher. With REDIS_URL set, instances share rooms through
 * @socket.io/redis-adapter. Run as a program: PORT=... [REDIS_URL=...] node --import tsx socketio-server.ts
 */
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const http = createServer((req, res) => {
  if (req.url === "/healthz") res.writeHead(200).end();
});
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  cors: { origin: false },
});

if (process.env.REDIS_URL) {
  // RESP2: the adapter was written against ioredis 5's pub/sub events.
  const pub = new Redis(process.env.REDIS_URL, { protocol: 2 });
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub, { key: process.env.SOCKETIO_REDIS_KEY ?? "bench-socket.io" }));
}

io.on("connection", (socket) => {
  socket.on("sub", (channel: string, ack: (ok: boolean) => void) => {
    socket.join(channel);
    ack(true);
  });
  socket.on("pub", (channel: string, text: string, ack: (ok: boolean) => void) => {
    io.to(channel).emit("msg", channel, text);
    ack(true);
  });
});

http.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
