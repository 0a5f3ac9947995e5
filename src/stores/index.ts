/**
 * Token stores: where tokens live between restarts and between processes. See
 * {@link TokenStore} for the contract the engine calls.
 */
export type {
  StoreLogger,
  TokenLease,
  TokenStore,
  TokenStoreEntry,
  TokenStoreUpdate,
} from "./token-store.js";
export { createEntryCipher } from "./entry-cipher.js";
export type { EntryCipher, EntryCipherOptions, OpenFailure, OpenResult } from "./entry-cipher.js";
export { STORE_SECRET_WAIT_MS } from "./store-secret.js";
export type { StoreSecret } from "./store-secret.js";
export { isTokenStoreUnavailableError, TokenStoreUnavailableError } from "./errors.js";
export { createFileTokenStore, DEFAULT_CACHE_NAME, defaultCacheDirectory } from "./file-store.js";
export type { FileTokenStoreOptions } from "./file-store.js";
export { createMemoryTokenStore } from "./memory-store.js";
export type { MemoryTokenStoreOptions } from "./memory-store.js";
export { createRedisTokenStore } from "./redis-store.js";
export type { RedisTokenStore, RedisTokenStoreOptions } from "./redis-store.js";
export type { RedisTlsOptions } from "./redis-connection.js";
export { credentialIdOf, partitionOf, STORE_VERSION, storeKeyOf } from "./store-key.js";
export type { StoreKeyFields, StorePartition } from "./store-key.js";
