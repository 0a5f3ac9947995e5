/**
 * What the Redis token store says to Redis: the node-redis module it loads (an optional peer),
 * the Lua scripts that change a key and announce it in one step, and the update message the
 * fleet's processes exchange on the channel.
 */
import type * as Redis from "redis";
import type { TokenStoreEntry } from "./token-store.js";

export type RedisModule = typeof Redis;
export type RedisClient = ReturnType<RedisModule["createClient"]>;

// A write never replaces a token that lives longer (an older token written late, by a holder
// whose request was slow, must not overwrite a newer one): the remaining lives are compared
// in Redis, atomically with the SET, on Redis's own clock (the sealed value is opaque here).
export const SET_AND_PUBLISH = `
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;
// The entry and its remaining life on Redis's clock (PTTL), which no holder's clock skews.
export const GET_WITH_TTL = `
return { redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]) }`;
export const DELETE_AND_PUBLISH = `
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`;
// A release is announced (atomically with the delete) so a process waiting for the holder's
// token looks again at once: a holder whose caller aborted, or that closed during a rolling
// deploy, gives the lease back without a token, and the waiters would otherwise sleep until
// their own deadline (20 s, issue #18).
export const RELEASE_IF_HOLDER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`;

/**
 * What the update channel carries: `v` the sealed entry, `null` for a delete; `r: 1` (with
 * `v: null`) for a lease given back, which an older reader takes for a delete and ignores.
 */
export interface UpdateMessage {
  readonly k: string;
  readonly v: string | null;
  readonly r?: 1;
  /** The writer's remaining life of the token (ms) when it was published. */
  readonly t?: number;
}

export function isUpdateMessage(value: unknown): value is UpdateMessage {
  if (typeof value !== "object" || value === null) return false;
  const { k, v, r, t } = value as Record<string, unknown>;
  return (
    typeof k === "string" &&
    (v === null || typeof v === "string") &&
    (r === undefined || r === 1) &&
    (t === undefined || typeof t === "number")
  );
}

/** How far a stored expiry may differ from Redis's count before it is taken for clock skew. */
export const SKEW_TOLERANCE_MS = 1_000;

/** `entry` with its expiry at `expiresOnTimestamp` and its refresh time moved as much. */
export function reanchored(entry: TokenStoreEntry, expiresOnTimestamp: number): TokenStoreEntry {
  const shift = expiresOnTimestamp - entry.expiresOnTimestamp;
  return entry.refreshAfterTimestamp === undefined
    ? { token: entry.token, expiresOnTimestamp }
    : {
        token: entry.token,
        expiresOnTimestamp,
        refreshAfterTimestamp: entry.refreshAfterTimestamp + shift,
      };
}

export async function loadRedis(): Promise<RedisModule> {
  try {
    return await import("redis");
  } catch (error) {
    throw new Error(
      'The Redis token store needs the "redis" package (an optional peer dependency of rx-identity): npm install redis',
      { cause: error },
    );
  }
}
