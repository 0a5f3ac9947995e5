/**
 * The options of `createRedisTokenStore`, each with its default.
 */
import type * as Redis from "redis";
import type { RedisTlsOptions } from "./redis-connection.js";
import type { StoreSecret } from "./store-secret.js";
import type { StoreLogger } from "./token-store.js";

/** Options of {@link createRedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /**
   * The client secret entries are sealed with (only derived keys are kept), or an
   * `Observable<string>` of the current one (pass the credential's, such as
   * `secretFromFile(path)`): new entries are sealed under the newest secret, and entries
   * sealed under an earlier one stay readable while they are valid.
   */
  readonly clientSecret: StoreSecret;
  /** Names this credential's update channel: `credentialIdOf({ authorityHost, clientId })`. */
  readonly credentialId: string;
  /**
   * The Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS). Give
   * either `url` or `cluster`, not both.
   * @default "redis://127.0.0.1:6379" (when `cluster` is not given either)
   */
  readonly url?: string | undefined;
  /**
   * A Redis Cluster (self-hosted Redis or Valkey cluster, Azure Cache for Redis with
   * clustering, Azure Managed Redis with the OSS cluster policy): node-redis `createCluster`
   * options, at least `rootNodes: [{ url }]`. The store sets, over what is given here, what it
   * needs on every node connection (`defaults`: no offline queue, a bounded command queue,
   * `connectTimeoutMs`, `reconnect`, `credentials`, `tls`) and `commandOptions.timeout`;
   * the user, password and TLS of the first root node's URL apply to every node (node-redis
   * takes them from `defaults` only). `topologyRefreshOnReconnectionAttemptStrategy`
   * defaults to 1 s here (node-redis: 5 s): how soon a dead master's replica is found.
   *
   * Keys and update channels are laid out for slots: a key's token and lease share a hash
   * tag with its update channel (one of 16 per credential, `SSUBSCRIBE`/`SPUBLISH`), so every
   * script runs on one node. Sharded pub/sub needs Redis 7 or later (any Valkey).
   * @default undefined (one node, at `url`)
   * @example
   * ```ts
   * const store = await createRedisTokenStore({
   *   cluster: { rootNodes: [{ url: "rediss://user:password@redis-0.internal:6379" }] },
   *   tls: { ca: readFileSync("ca.pem") },
   *   clientSecret,
   *   credentialId: credentialIdOf({ authorityHost, clientId }),
   * });
   * ```
   */
  readonly cluster?: Redis.RedisClusterOptions<Redis.RedisModules> | undefined;
  /**
   * TLS settings for `rediss://` (on a cluster, for every node): the CA that signed the
   * server's certificate when it is not in Node's trust store, a client certificate, the
   * server name to check. Requires a `rediss://` URL.
   * @default undefined (Node's trusted CAs; TLS only with `rediss://`)
   * @example
   * ```ts
   * const tls = { ca: readFileSync("/etc/redis/ca.pem") };
   * ```
   */
  readonly tls?: RedisTlsOptions | undefined;
  /**
   * Prefix of every key and channel, to share one Redis with other applications.
   * @default "rx-identity"
   */
  readonly keyPrefix?: string | undefined;
  /**
   * The longest a command may take before the store reports itself unavailable. Short:
   * a caller waiting on it could have asked Entra ID instead. Counted in time this process
   * could have read the reply: time its event loop spent blocked is added back, up to
   * 4 × this value in all, so a busy process does not take a healthy Redis for a dead one.
   * @default 500
   */
  readonly commandTimeoutMs?: number | undefined;
  /**
   * The longest one connection attempt may take; also how long {@link createRedisTokenStore}
   * waits for the first connection before returning a store that is still connecting.
   * @default 1_000
   */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * The reconnect delay after the n-th failed attempt, by the library's one backoff formula
   * (`backoffDelay`, as for token requests): a uniform random wait in `[0, min(base × 2ⁿ, max))`
   * (full jitter, so a fleet does not reconnect in lock-step), never under
   * `min(100 ms, base / 2)`.
   * @default { baseDelayMs: 50, maxDelayMs: 2_000 }
   */
  readonly reconnect?: { readonly baseDelayMs?: number; readonly maxDelayMs?: number } | undefined;
  /**
   * How the store authenticates to Redis instead of a password in `url`: a node-redis
   * credentials provider, such as `redisCredentials(credential, { username })` from
   * `rx-identity/redis` for Azure Managed Redis with Microsoft Entra ID. Both connections (the
   * commands and the update subscriber, RESP3) re-authenticate with every refreshed token.
   * @default undefined (the credentials of `url`, if any)
   */
  readonly credentials?: Redis.RedisClientOptions["credentialsProvider"] | undefined;
  /** @default the `@azure/logger` client logger `rx-identity:stores` */
  readonly logger?: StoreLogger | undefined;
  /** The clock for expiry, epoch milliseconds. @default Date.now */
  readonly now?: (() => number) | undefined;
  /** @default Math.random */
  readonly random?: (() => number) | undefined;
}
