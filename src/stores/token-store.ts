import type { Observable } from "rxjs";

/**
 * Where tokens live between processes: the contract every store implements (memory, file,
 * Redis) and the engine (`src/streams`) calls on cold start, around each acquisition, and
 * when another process writes a token.
 *
 * Store keys come from {@link storeKeyOf}: a SHA-256 of what identifies a token (authority,
 * client id, tenant, scopes, claims, CAE), never the secret. Stores that keep tokens outside
 * this process seal them with {@link createEntryCipher}.
 */

/**
 * One stored token. Times are epoch milliseconds.
 *
 * @example
 * ```ts
 * const entry: TokenStoreEntry = { token, expiresOnTimestamp: Date.now() + 3_600_000 };
 * ```
 */
export interface TokenStoreEntry {
  readonly token: string;
  readonly expiresOnTimestamp: number;
  /** When the token should be refreshed (the server's `refresh_in`, or the engine's rule). */
  readonly refreshAfterTimestamp?: number | undefined;
}

/**
 * A token written (or deleted, `entry: undefined`) by any holder of the store, this process
 * included, or a refresh lease given back (`released: true`, `entry: undefined`). Delivered
 * by {@link TokenStore.watch}.
 *
 * @example
 * ```ts
 * store.watch?.(key).subscribe(({ entry }) => entry && console.log("new token expires", entry.expiresOnTimestamp));
 * ```
 */
export interface TokenStoreUpdate {
  readonly key: string;
  readonly entry: TokenStoreEntry | undefined;
  /**
   * The lease of `key` was given back (its holder may have written no token: its caller
   * aborted, or it closed): whoever waits for that holder should look again.
   * @default undefined (a write or a delete)
   */
  readonly released?: true | undefined;
}

/**
 * The right to refresh one key for a while. Only one holder at a time gets it; it lapses by
 * itself after its TTL, so a holder that dies never blocks the others for longer.
 *
 * @example
 * ```ts
 * const lease = await store.lease?.(key, 30_000);
 * if (lease) try { await acquireAndWrite(); } finally { await lease.release(); }
 * ```
 */
export interface TokenLease {
  /** Gives the lease back, only if it still is ours (a lapsed lease someone else took is left alone). */
  release(): Promise<void>;
}

/**
 * The one interface the engine uses to share tokens with restarts and with other processes.
 *
 * Errors: a store that cannot reach its backend (Redis down or slow) rejects with
 * {@link TokenStoreUnavailableError} quickly; the caller then acquires on its own. An entry
 * that is corrupt, tampered with, truncated or sealed with another secret is never returned:
 * `read` resolves `undefined` and the store logs why.
 *
 * @example
 * ```ts
 * const store: TokenStore = createMemoryTokenStore();
 * await store.write(key, { token, expiresOnTimestamp });
 * const entry = await store.read(key); // { token, expiresOnTimestamp }
 * await store.close();
 * ```
 */
export interface TokenStore {
  /** The entry at `key`, or `undefined` when there is none, it expired, or it cannot be trusted. */
  read(key: string): Promise<TokenStoreEntry | undefined>;
  /** Stores `entry` at `key` (replacing any) and tells watchers. An already expired entry is not kept. */
  write(key: string, entry: TokenStoreEntry): Promise<void>;
  /** Removes the entry at `key` and tells watchers. */
  delete(key: string): Promise<void>;
  /**
   * Updates to `key` (or to every key when `key` is omitted) made by any holder of the store,
   * and lease releases when the store has {@link TokenStore.lease}. A `read` started after
   * subscribing misses no later write: the store makes it wait until the watch is active
   * (bounded by its command timeout). Stores that cannot see other writers do not have it.
   */
  watch?(key?: string): Observable<TokenStoreUpdate>;
  /**
   * Tries to take the refresh lease of `key` for `ttlMs`: the lease, or `null` when someone
   * else holds it. Stores shared by one process only do not need it.
   */
  lease?(key: string, ttlMs: number): Promise<TokenLease | null>;
  /** Releases connections, files and watchers. Idempotent; later calls reject. */
  close(): Promise<void>;
}

/**
 * Where stores report what they ignored or could not do. `@azure/logger`'s `AzureLogger`
 * fits; tests pass their own to see the lines.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const logger: StoreLogger = { info: (m) => lines.push(m), warning: (m) => lines.push(m) };
 * ```
 */
export interface StoreLogger {
  info(message: string): void;
  warning(message: string): void;
}
