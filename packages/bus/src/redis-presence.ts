import type { Redis } from "ioredis";
import type { PresenceEntry, PresenceStore } from "./presence.ts";

/**
 * Per channel: a hash clientId -> entry JSON and a sorted set clientId -> expiry (ms). Reads and
 * sweeps drop expired members atomically in Lua, so two instances never both report one expiry.
 */
const SWEEP = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #expired == 0 then return {} end
local entries = redis.call('HMGET', KEYS[1], unpack(expired))
redis.call('HDEL', KEYS[1], unpack(expired))
redis.call('ZREM', KEYS[2], unpack(expired))
return entries
`;

const KEY_GRACE_MS = 60_000;

export class RedisPresence implements PresenceStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}

  private keys(channelId: string): [string, string] {
    return [`${this.prefix}presence:{${channelId}}`, `${this.prefix}presence-exp:{${channelId}}`];
  }

  async upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number) {
    if (entries.length === 0) return;
    const expiresAt = Date.now() + ttlMs;
    const pipeline = this.client.pipeline();
    for (const { channelId, entry } of entries) {
      const [hash, expiries] = this.keys(channelId);
      pipeline.hset(hash, entry.clientId, JSON.stringify(entry));
      pipeline.zadd(expiries, expiresAt, entry.clientId);
      // The keys outlive their newest entry by a minute (so sweeps still see expiries and report the
      // leaves), then an abandoned channel cleans itself up.
      pipeline.pexpire(hash, ttlMs + KEY_GRACE_MS);
      pipeline.pexpire(expiries, ttlMs + KEY_GRACE_MS);
    }
    await pipeline.exec();
  }

  async remove(channelId: string, clientId: string) {
    const [hash, expiries] = this.keys(channelId);
    await this.client.multi().hdel(hash, clientId).zrem(expiries, clientId).exec();
  }

  async list(channelId: string) {
    const [hash, expiries] = this.keys(channelId);
    const [[, live], [, all]] = (await this.client
      .multi()
      .zrangebyscore(expiries, `(${Date.now()}`, "+inf")
      .hgetall(hash)
      .exec()) as [[unknown, string[]], [unknown, Record<string, string>]];
    return live.flatMap((clientId) => {
      const json = all[clientId];
      return json ? [JSON.parse(json) as PresenceEntry] : [];
    });
  }

  async sweep(channelId: string) {
    const entries = (await this.client.eval(SWEEP, 2, ...this.keys(channelId), Date.now())) as Array<
      string | null
    >;
    return entries.flatMap((json) => (json ? [JSON.parse(json) as PresenceEntry] : []));
  }
}
