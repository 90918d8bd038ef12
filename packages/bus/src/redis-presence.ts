import type { Redis } from "ioredis";
import type { PresenceEntry, PresenceStore } from "./presence.ts";

/**
 * Per channel: a hash clientId -> entry JSON and a sorted set clientId -> expiry (ms); per channel
 * and user, a set of the user's clientIds, so joins, leaves and userOnline read one user's entries,
 * not the channel. Joins, leaves and sweeps run in Lua, so of two instances only one announces a
 * user's join or leave or reports an expiry, and the user sets never lag the hash. Leaves and
 * sweeps build user keys from entries' userIds (after the prefix in ARGV[2]): they share the
 * channel's hash tag, so they stay on the channel's cluster slot.
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

/** Whether the user has a live entry; a join leaves out the joining entry's own copy. */
const ONLINE = `
local function online(expiries, clients, now, exceptClientId)
  for _, clientId in ipairs(redis.call('SMEMBERS', clients)) do
    if clientId ~= exceptClientId then
      local expiresAt = redis.call('ZSCORE', expiries, clientId)
      if expiresAt and tonumber(expiresAt) > tonumber(now) then return true end
    end
  end
  return false
end
`;

/** KEYS: hash, expiries, user's clientIds. ARGV: now, expiresAt, clientId, entry JSON, key TTL. */
const JOIN = `${ONLINE}
local wasOnline = online(KEYS[2], KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return wasOnline and 0 or 1
`;

/** KEYS: hash, expiries. ARGV: clientId, user key prefix, now. */
const LEAVE = `${ONLINE}
local json = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not json then return 0 end
local clients = ARGV[2] .. cjson.decode(json).userId
redis.call('SREM', clients, ARGV[1])
return online(KEYS[2], clients, ARGV[3]) and 0 or 1
`;

/** KEYS: expiries, user's clientIds. ARGV: now. */
const USER_ONLINE = `${ONLINE}
return online(KEYS[1], KEYS[2], ARGV[1]) and 1 or 0
`;

/**
 * The keys outlive their newest entry by a minute (so sweeps still see expiries and report the
 * leaves), then an abandoned channel cleans itself up.
 */
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

  /** The hash, the expiries and the user's set of clientIds: every key one entry lives in. */
  private entryKeys(channelId: string, userId: string): [string, string, string] {
    return [...this.keys(channelId), this.userKeyPrefix(channelId) + userId];
  }

  /**
   * One ZADD and one HSET per channel, one SADD per user, one PEXPIRE per key: an instance's refresh
   * carries every entry it holds, and per-entry commands (six each, most of them the same PEXPIREs
   * again) held the event loop for 143 ms at 1,000 entries in a profile of the bench's seed load.
   */
  async upsert(entries: ReadonlyArray<{ channelId: string; entry: PresenceEntry }>, ttlMs: number) {
    if (entries.length === 0) return;
    const expiresAt = Date.now() + ttlMs;
    const keyTtl = ttlMs + KEY_GRACE_MS;
    const pipeline = this.client.pipeline();
    const byChannel = groupBy(
      entries,
      ({ channelId }) => channelId,
      ({ entry }) => entry,
    );
    for (const [channelId, channelEntries] of byChannel) {
      const [hash, expiries] = this.keys(channelId);
      // Expiry first: a sweep racing a refresh then either took an entry before it (and the rest
      // re-adds it whole) or sees it live and leaves it alone, never half of it.
      pipeline.zadd(expiries, ...channelEntries.flatMap((entry) => [expiresAt, entry.clientId]));
      pipeline.hset(hash, ...channelEntries.flatMap((entry) => [entry.clientId, JSON.stringify(entry)]));
      const clientsByUser = groupBy(
        channelEntries,
        ({ userId }) => userId,
        ({ clientId }) => clientId,
      );
      const userKeys: string[] = [];
      for (const [userId, clients] of clientsByUser) {
        const userClients = this.userKeyPrefix(channelId) + userId;
        pipeline.sadd(userClients, ...clients);
        userKeys.push(userClients);
      }
      for (const key of [expiries, hash, ...userKeys]) pipeline.pexpire(key, keyTtl);
    }
    await pipeline.exec();
  }

  async join(channelId: string, entry: PresenceEntry, ttlMs: number) {
    const now = Date.now();
    const joined = await this.client.eval(
      JOIN,
      3,
      ...this.entryKeys(channelId, entry.userId),
      now,
      now + ttlMs,
      entry.clientId,
      JSON.stringify(entry),
      ttlMs + KEY_GRACE_MS,
    );
    return joined === 1;
  }

  async leave(channelId: string, clientId: string) {
    const left = await this.client.eval(
      LEAVE,
      2,
      ...this.keys(channelId),
      clientId,
      this.userKeyPrefix(channelId),
      Date.now(),
    );
    return left === 1;
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
    const [, expiries, userClients] = this.entryKeys(channelId, userId);
    return (await this.client.eval(USER_ONLINE, 2, expiries, userClients, Date.now())) === 1;
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

function groupBy<T, V>(items: Iterable<T>, key: (item: T) => string, value: (item: T) => V) {
  const groups = new Map<string, V[]>();
  for (const item of items) {
    const name = key(item);
    const group = groups.get(name);
    if (group) group.push(value(item));
    else groups.set(name, [value(item)]);
  }
  return groups;
}
