/**
 * What the Redis token store says to Redis: the node-redis module it loads (an optional peer),
 * the Lua scripts that change a key and announce it in one step, and the update message the
 * fleet's processes exchange on the channel.
 */
import type * as Redis from "redis";
import type { TokenStoreEntry } from "./token-store.js";

export type RedisModule = typeof Redis;
export type RedisClient = ReturnType<RedisModule["createClient"]>;

/** `PUBLISH` on one node; `SPUBLISH` on a cluster, to a channel in the slot of the keys. */
export type PublishCommand = "PUBLISH" | "SPUBLISH";

/** The Lua scripts that change a key and announce it in one step, for one publish command. */
export interface StoreScripts {
  readonly setAndPublish: string;
  readonly getWithTtl: string;
  readonly deleteAndPublish: string;
  readonly releaseIfHolder: string;
}

/**
 * The scripts, publishing with `publish`. On a cluster a script may touch only keys of one
 * slot, and `SPUBLISH` from a script only a channel of that slot too: the key layout
 * ({@link keyLayout}) gives a key's token, lease and update channel one hash tag.
 */
export function storeScripts(publish: PublishCommand): StoreScripts {
  return {
    // A write never replaces a token that lives longer (an older token written late, by a
    // holder whose request was slow, must not overwrite a newer one): the remaining lives are
    // compared in Redis, atomically with the SET, on Redis's own clock (the sealed value is
    // opaque here).
    setAndPublish: `
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('${publish}', ARGV[3], ARGV[4])
return 1`,
    // The entry and its remaining life on Redis's clock (PTTL), which no holder's clock skews.
    getWithTtl: `
return { redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]) }`,
    deleteAndPublish: `
redis.call('DEL', KEYS[1])
redis.call('${publish}', ARGV[1], ARGV[2])
return 1`,
    // A release is announced (atomically with the delete) so a process waiting for the
    // holder's token looks again at once: a holder whose caller aborted, or that closed during
    // a rolling deploy, gives the lease back without a token, and the waiters would otherwise
    // sleep until their own deadline (20 s, issue #18).
    releaseIfHolder: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('${publish}', ARGV[2], ARGV[3])
  return 1
end
return 0`,
  };
}

/**
 * Update channels per credential on a cluster. Each is one slot (its hash tag), shared with
 * the keys of the store keys that hash to it: few enough that every process subscribes to
 * all of them (node-redis holds one subscriber connection per master that owns any), enough
 * that one credential's keys spread over the masters.
 */
export const SLOT_GROUPS = 16;

/** Where a store's keys and channels live in Redis. */
export interface KeyLayout {
  readonly tokenKey: (key: string) => string;
  readonly leaseKey: (key: string) => string;
  /** The channel a change of `key` is published on. */
  readonly channelOf: (key: string) => string;
  /** Every channel a watcher subscribes to. */
  readonly channels: readonly string[];
}

/** FNV-1a (32 bit) of `text`: a stable, even spread of store keys over slot groups. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The key layout. One node: `<prefix>:token:<key>`, `<prefix>:lease:<key>` and one channel
 * per credential, `<prefix>:updates:<credential id>` (as before clusters were supported, so a
 * rolling upgrade keeps sharing). A cluster: the key's slot group `g` gives the hash tag
 * `{<credential id>:<g>}` to its token, its lease and its group's channel,
 * `<prefix>:{<credential id>:<g>}:updates`, so each script runs on one node and publishes
 * there; a watcher subscribes to the {@link SLOT_GROUPS} channels with `SSUBSCRIBE`.
 *
 * Sharded pub/sub rather than `PUBLISH`, which a cluster also carries to every node: a classic
 * message crosses the cluster bus to every node (load that grows with the cluster), and its
 * subscriber hangs on one node, while a sharded channel lives on the master of its slot, whose
 * replica takes it over in a failover (node-redis subscribes again there).
 */
export function keyLayout(prefix: string, credentialId: string, cluster: boolean): KeyLayout {
  if (!cluster) {
    const channel = `${prefix}:updates:${credentialId}`;
    return {
      tokenKey: (key) => `${prefix}:token:${key}`,
      leaseKey: (key) => `${prefix}:lease:${key}`,
      channelOf: () => channel,
      channels: [channel],
    };
  }
  const tag = (group: number): string => `{${credentialId}:${group}}`;
  const tagOf = (key: string): string => tag(fnv1a(key) % SLOT_GROUPS);
  return {
    tokenKey: (key) => `${prefix}:${tagOf(key)}:token:${key}`,
    leaseKey: (key) => `${prefix}:${tagOf(key)}:lease:${key}`,
    channelOf: (key) => `${prefix}:${tagOf(key)}:updates`,
    channels: Array.from({ length: SLOT_GROUPS }, (_, group) => `${prefix}:${tag(group)}:updates`),
  };
}

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
