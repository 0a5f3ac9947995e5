/**
 * `rx-identity/redis`: the Redis token store for a fleet of processes sharing one service
 * principal. A subpath of its own so that users without Redis never need the `redis`
 * package's types (it is an optional peer dependency; the store loads it only when created).
 *
 * @example
 * ```ts
 * import { ClientSecretCredential, credentialIdOf } from "rx-identity";
 * import { createRedisTokenStore } from "rx-identity/redis";
 *
 * const store = await createRedisTokenStore({
 *   url: process.env.REDIS_URL,
 *   clientSecret,
 *   credentialId: credentialIdOf({ authorityHost, clientId }),
 * });
 * const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
 *   authorityHost,
 *   tokenStore: store,
 * });
 * ```
 */
export { createRedisTokenStore } from "./stores/redis-store.js";
export type { RedisTokenStore, RedisTokenStoreOptions } from "./stores/redis-store.js";
export type { RedisTlsOptions } from "./stores/redis-connection.js";
export { REDIS_SCOPE, redisCredentials } from "./adapters/redis-credentials.js";
export type {
  RedisBasicAuth,
  RedisCredentialsListener,
  RedisCredentialsOptions,
  RedisCredentialsProvider,
  TokenStreamCredential,
} from "./adapters/redis-credentials.js";
