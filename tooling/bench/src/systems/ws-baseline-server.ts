/**
 * The practical ceiling: a bare `ws` fan-out server. A Set of sockets per channel; a publish is
 * encoded once and the same buffer is written to every socket of the channel.
 * Protocol (text JSON): {t:"sub",ch} -> {t:"subok",ch}; {t:"pub",ch,text,id} -> {t:"msg",ch,text} to
 * every subscriber and {t:"ack",id} to the publisher.
 * Run as a program: PORT=... node --import tsx ws-baseline-server.ts
 */
import { createServer } from "node:http";
import { type WebSocket, WebSocketServer } from "ws";

const channels = new Map<string, Set<WebSocket>>();

const http = createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404).end();
});
const wss = new WebSocketServer({ server: http, path: "/ws", perMessageDeflate: false });

wss.on("connection", (ws) => {
  const mine = new Set<string>();
  ws.on("message", (data) => {
    let message: { t?: string; ch?: string; text?: string; id?: number };
    try {
      message = JSON.parse(data.toString());
    } catch {
      return;
    }
    const { ch } = message;
    if (typeof ch !== "string") return;
    if (message.t === "sub") {
      const set = channels.get(ch) ?? new Set<WebSocket>();
      channels.set(ch, set);
      set.add(ws);
      mine.add(ch);
      ws.send(JSON.stringify({ t: "subok", ch }));
    } else if (message.t === "pub") {
      const frame = Buffer.from(JSON.stringify({ t: "msg", ch, text: message.text }));
      const set = channels.get(ch);
      if (set) for (const socket of set) socket.send(frame, { binary: false });
      ws.send(JSON.stringify({ t: "ack", id: message.id }));
    }
  });
  ws.on("close", () => {
    for (const ch of mine) {
      const set = channels.get(ch);
      set?.delete(ws);
      if (set?.size === 0) channels.delete(ch);
    }
  });
});

http.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
