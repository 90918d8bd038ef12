#!/usr/bin/env -S npx tsx
import { parseArgs } from "node:util";
import { createChannelsClient, errorCode } from "./channels-client.ts";

const usage = `usage: pnpm channels <command> [args] [--url http://127.0.0.1:3001] [--token JWT]
  create <scope:entity:id> [--metadata '{"k":"v"}']
  subscribe <channel> [--last <messageId>]      durable subscription; prints what was missed
  unsubscribe <channel>
  broadcast <channel> <event> '<payload json>' [--key <idempotencyKey>]
  tail <channel> [--last <messageId>] [--count N]   stream messages as JSON lines
  pending                                       messages not yet acknowledged
  ack <messageId>...
  list                                          your channels with unread counts
  subscribers <channel>
The token defaults to $CHANNELS_TOKEN, the url to $CHANNELS_URL.`;

const { values, positionals } = parseArgs({
  // `pnpm run x -- --flag` passes the "--" through.
  args: process.argv.slice(2).filter((arg, i) => i > 0 || arg !== "--"),
  allowPositionals: true,
  options: {
    url: { type: "string", default: process.env.CHANNELS_URL ?? "http://127.0.0.1:3001" },
    token: { type: "string", default: process.env.CHANNELS_TOKEN },
    metadata: { type: "string" },
    last: { type: "string" },
    key: { type: "string" },
    count: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

const [command, ...args] = positionals;
if (values.help || !command) {
  console.log(usage);
  process.exit(values.help ? 0 : 2);
}
if (!values.token) {
  console.error("no token: pass --token or set CHANNELS_TOKEN (mint one with `pnpm run token -- --help`)");
  process.exit(2);
}

const client = createChannelsClient({ url: values.url, token: values.token });
const { trpc } = client;
const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

function need(index: number, what: string): string {
  const value = args[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

class UsageError extends Error {}

async function run() {
  switch (command) {
    case "create": {
      const [scope = "", entity = "", ...rest] = need(0, "channel name").split(":");
      const metadata = values.metadata ? JSON.parse(values.metadata) : undefined;
      return print(await trpc.channel.create.mutate({ scope, entity, entityId: rest.join(":"), metadata }));
    }
    case "subscribe":
      return print(
        await trpc.channel.subscribe.mutate({ channelName: need(0, "channel"), lastMessageId: values.last }),
      );
    case "unsubscribe":
      return print(await trpc.channel.unsubscribe.mutate({ channelName: need(0, "channel") }));
    case "broadcast": {
      const channelName = need(0, "channel");
      const event = need(1, "event") as "message.posted";
      const payload = JSON.parse(need(2, "payload json"));
      return print(
        await trpc.channel.broadcast.mutate({ channelName, event, payload, idempotencyKey: values.key }),
      );
    }
    case "tail":
      return tail(need(0, "channel"));
    case "pending":
      return print(await trpc.queue.pending.query());
    case "ack":
      if (args.length === 0) throw new UsageError("missing message ids");
      return print(await trpc.queue.ack.mutate({ messageIds: args }));
    case "list":
      return print(await trpc.channel.list.query());
    case "subscribers":
      return print(await trpc.channel.subscribers.query({ channelName: need(0, "channel") }));
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function tail(channelName: string): Promise<void> {
  const limit = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  let seen = 0;
  return new Promise((resolve, reject) => {
    const subscription = trpc.channel.events.subscribe(
      { channelName, lastEventId: values.last },
      {
        onData: ({ data }) => {
          console.log(JSON.stringify(data));
          if (++seen >= limit) {
            subscription.unsubscribe();
            resolve();
          }
        },
        onError: reject,
      },
    );
  });
}

run()
  .catch((error) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${usage}`);
    else console.error(`${errorCode(error) ?? "ERROR"}: ${(error as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
