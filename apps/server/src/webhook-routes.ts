import type { IncomingMessage, ServerResponse } from "node:http";
import {
  acceptInboundWebhook,
  type ChannelServices,
  type InboundWebhookResponse,
  inboundWebhookMaxBytes,
  refuseOversizedWebhook,
  SIGNATURE_HEADER,
} from "@wedsync/channels";
import type { Logger } from "pino";

export const INBOUND_WEBHOOK_PATH = "/webhooks/inbound";

interface InboundDeps {
  services: ChannelServices;
  logger: Logger;
  /** True once shutdown began: new webhooks are sent elsewhere. */
  draining: () => boolean;
}

function send(res: ServerResponse, response: InboundWebhookResponse) {
  if (res.headersSent) return;
  res.writeHead(response.status, { "content-type": "application/json", ...response.headers });
  res.end(JSON.stringify(response.body));
}

/** Reads the body up to `max` bytes; undefined when it is longer (the rest is never read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off("data", onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks, size)));
    req.once("error", reject);
  });
}

/**
 * POST /webhooks/inbound: reads the raw body (bounded), hands it to acceptInboundWebhook with the
 * signature header and answers with its status and JSON body. See docs/api.md.
 */
export async function handleInboundWebhook(req: IncomingMessage, res: ServerResponse, deps: InboundDeps) {
  const { services } = deps;
  if (req.method !== "POST") {
    res.setHeader("allow", "POST");
    return send(res, { status: 405, body: { error: "METHOD_NOT_ALLOWED", message: "use POST" } });
  }
  if (deps.draining()) {
    return send(res, {
      status: 503,
      body: { error: "UNAVAILABLE", message: "server is shutting down" },
      headers: { "retry-after": "5" },
    });
  }
  const max = inboundWebhookMaxBytes(services);
  const declared = Number(req.headers["content-length"] ?? 0);
  let body: Buffer | undefined;
  try {
    body = declared > max ? undefined : await readBody(req, max);
  } catch {
    return void req.destroy(); // the client went away mid-body
  }
  if (!body) {
    // The rest of the body is not read: answer and close the connection.
    res.setHeader("connection", "close");
    res.once("finish", () => req.destroy());
    return send(res, refuseOversizedWebhook(services));
  }
  try {
    const response = await services.inflight.run(() =>
      acceptInboundWebhook(services, { body, signature: req.headers[SIGNATURE_HEADER] }),
    );
    send(res, response);
  } catch (error) {
    deps.logger.error({ err: error }, "inbound webhook failed");
    send(res, { status: 500, body: { error: "INTERNAL_SERVER_ERROR", message: "the broadcast failed" } });
  }
}
