import type { Redis } from "ioredis";
import type { PresenceEntry, PresenceStore } from "./presence.ts";

/**
 * Per channel: a hash clientId -> entry JSON and a sorted set clientId -> expiry (ms); per channel
 * and user, a set of the user's clientIds, so userOnline reads one user's entries, not the channel.
 * Removes and sweeps run in Lua, so two instances never both report one expiry and the user sets
 * never lag the hash. The scripts build user keys from entries' userIds (after the prefix in
 * ARGV[2]): they share the channel's hash tag, so they stay on the channel's cluster slot.
 */
const SWEEP = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #expired == 0 then return {} end
local entries = redis.call('HMGET', KEYS[1], unpack(expired))
redis.call('HDEL', KEYS[1], unpack(expired))
redis.call('ZREM', KEYS[2], unpack(expired))
for i = 1, #expired do
  if entries[i] then redis.call('SREM', ARGV[2] .. cjson.decode(entries[i]).userId, expired[i]) end
end
return entries
`;

const REMOVE = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if json then redis.call('SREM', ARGV[2] .. cjson.decode(json).userId, ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
`;

const USER_ONLINE = `
for _, clientId in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local expiresAt = redis.call('ZSCORE', KEYS[2], clientId)
  if expiresAt and tonumber(expiresAt) > tonumber(ARGV[1]) then return 1 end
end
return 0
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

  private userKeyPrefix(channelId: string) {
    return `${this.prefix}presence-user:{${channelId}}:`;
  }

  async upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number) {
    if (entries.length === 0) return;
    const expiresAt = Date.now() + ttlMs;
    const pipeline = this.client.pipeline();
    for (const { channelId, entry } of entries) {
      const [hash, expiries] = this.keys(channelId);
      const userClients = this.userKeyPrefix(channelId) + entry.userId;
      // Expiry first: a sweep racing a refresh then either took the entry before it (and the rest
      // re-adds it whole) or sees it live and leaves it alone, never half of it.
      pipeline.zadd(expiries, expiresAt, entry.clientId);
      pipeline.hset(hash, entry.clientId, JSON.stringify(entry));
      pipeline.sadd(userClients, entry.clientId);
      // The keys outlive their newest entry by a minute (so sweeps still see expiries and report the
      // leaves), then an abandoned channel cleans itself up.
      for (const key of [expiries, hash, userClients]) pipeline.pexpire(key, ttlMs + KEY_GRACE_MS);
    }
    await pipeline.exec();
  }

  async remove(channelId: string, clientId: string) {
    await this.client.eval(REMOVE, 2, ...this.keys(channelId), clientId, this.userKeyPrefix(channelId));
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

  async userOnline(channelId: string, userId: string) {
    const [, expiries] = this.keys(channelId);
    const userClients = this.userKeyPrefix(channelId) + userId;
    return (await this.client.eval(USER_ONLINE, 2, userClients, expiries, Date.now())) === 1;
  }

  async sweep(channelId: string) {
    const entries = (await this.client.eval(
      SWEEP,
      2,
      ...this.keys(channelId),
      Date.now(),
      this.userKeyPrefix(channelId),
    )) as Array<string | null>;
    return entries.flatMap((json) => (json ? [JSON.parse(json) as PresenceEntry] : []));
  }
}
