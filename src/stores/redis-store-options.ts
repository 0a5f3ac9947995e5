/**
 * The options of `createRedisTokenStore`, each with its default.
 */
import type * as Redis from "redis";
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
   * The Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS).
   * @default "redis://127.0.0.1:6379"
   */
  readonly url?: string | undefined;
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
