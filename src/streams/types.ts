import type { AccessToken } from "@azure/core-auth";
import type { Observable, SchedulerLike } from "rxjs";

/**
 * The contract between the engine (`src/streams`) and whoever acquires tokens
 * (`src/credential`). The engine knows nothing of Entra ID or MSAL: it sees keys, an
 * `acquire` function, and a classifier of failures.
 */

/** What one acquisition returns. Times are epoch milliseconds on the registry's scheduler clock. */
export interface AcquiredToken {
  readonly token: string;
  readonly expiresOnTimestamp: number;
  /** The server's suggested refresh time (`refresh_in`), when it gave one. */
  readonly refreshAfterTimestamp?: number | undefined;
}

/** A registry key. `id` is canonical: two keys with equal `id` are the same token. */
export interface TokenKey {
  readonly id: string;
  /**
   * Short-lived keys (claims requests) always go to the network on `get`, are never
   * refreshed in the background, are forgotten when nobody holds them, and their number is
   * bounded.
   */
  readonly shortLived?: boolean;
}

/**
 * Acquires one token for `key`. A Promise must reject promptly once `signal` aborts; an
 * Observable is unsubscribed when the acquisition is cancelled, and its first value is the
 * token. (Observables let stream behaviour be tested with `TestScheduler` marbles, where
 * `expectSubscriptions` on the source proves how many acquisitions ran and when.)
 * `callerContext` is what the `get` caller that started this acquisition passed as
 * `get(key, { callerContext })` (a tracing context, say), the same for every retry; the
 * engine only carries it.
 */
export type Acquire<K extends TokenKey> = (
  key: K,
  signal: AbortSignal,
  callerContext?: unknown,
) => PromiseLike<AcquiredToken> | Observable<AcquiredToken>;

/** How a failure is classified by the acquirer's error mapper. */
export interface FailureClass {
  /** Whether trying again later may succeed. */
  readonly transient: boolean;
  /** A server-given delay before trying again (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number | undefined;
}

/** Classifies an error thrown by {@link Acquire}. */
export type Classify = (error: unknown) => FailureClass;

/**
 * Something that happened inside the registry, for logging, status and metrics. Never holds
 * a token. Times are on the registry's scheduler clock; `attempt` counts from 0 within one
 * acquisition cycle, and `durationMs` is that attempt's.
 */
export type RegistryEvent<K extends TokenKey = TokenKey> =
  | {
      readonly type: "acquire-start";
      readonly keyId: string;
      readonly key: K;
      readonly attempt: number;
    }
  | {
      readonly type: "acquire-success";
      readonly keyId: string;
      readonly key: K;
      readonly attempt: number;
      readonly durationMs: number;
      readonly expiresOnTimestamp: number;
      readonly refreshAt: number;
    }
  | {
      readonly type: "acquire-failure";
      readonly keyId: string;
      readonly key: K;
      readonly attempt: number;
      readonly durationMs: number;
      readonly error: unknown;
      readonly transient: boolean;
      /** When the next attempt is due; absent when the cycle gave up with no usable token. */
      readonly retryInMs?: number | undefined;
    }
  /**
   * A refresh failed while a usable token is held: that token goes on being served (first
   * failure of an outage only, until a token is acquired again).
   */
  | {
      readonly type: "token-served-stale";
      readonly keyId: string;
      readonly key: K;
      readonly expiresOnTimestamp: number;
      readonly usableUntil: number;
      readonly error: unknown;
      /** Whether `error` is transient (a refusal, such as a wrong secret, is not). */
      readonly transient: boolean;
    }
  /**
   * The token stream subscribers hold expired while retries go on: they got `error`, the
   * latest failure.
   */
  | {
      readonly type: "token-expired";
      readonly keyId: string;
      readonly key: K;
      readonly error: unknown;
    }
  | { readonly type: "key-evicted"; readonly keyId: string; readonly key: K }
  /** A token written by another holder of the shared cache was taken instead of acquiring. */
  | {
      readonly type: "shared-token";
      readonly keyId: string;
      readonly key: K;
      readonly expiresOnTimestamp: number;
      readonly refreshAt: number;
    }
  /** The shared cache failed (first failure of an outage only): this process acquires on its own. */
  | {
      readonly type: "shared-cache-unavailable";
      readonly keyId: string;
      readonly key: K;
      readonly error: unknown;
    }
  /** The shared cache answered again after {@link RegistryEvent} `shared-cache-unavailable`. */
  | { readonly type: "shared-cache-available"; readonly keyId: string; readonly key: K };

/** The last failure of a key, kept until a token is acquired again. */
export interface KeyFailure {
  readonly error: unknown;
  readonly transient: boolean;
  /** When it happened, on the scheduler clock. */
  readonly at: number;
  /** How many attempts failed in a row, this one included. */
  readonly count: number;
}

/** What {@link TokenRegistry.status} reports for one live key. Times on the scheduler clock. */
export interface KeyStatus<K extends TokenKey = TokenKey> {
  readonly key: K;
  /** The held token's expiry, or `undefined` when no token is held. */
  readonly expiresOnTimestamp: number | undefined;
  /** Until when the held token is handed out (its expiry minus the forced window). */
  readonly usableUntil: number | undefined;
  /** When the held token is due for refresh. */
  readonly refreshAt: number | undefined;
  /** Whether an acquisition is in flight (or waiting between retries). */
  readonly refreshing: boolean;
  /** Whether the held token is past its refresh time while its refreshes fail. */
  readonly servedStale: boolean;
  /** The latest failure since the last token, or `undefined`. */
  readonly lastFailure: KeyFailure | undefined;
}

/** The keyed, self-refreshing, single-flight token registry. */
export interface TokenRegistry<K extends TokenKey> {
  /**
   * A shared stream of fresh tokens for `key`: emits the current usable token on subscribe
   * (if any), then every refreshed token; errors with a typed error only when no usable token
   * can be had; completes on `close()`.
   */
  stream(key: K): Observable<AccessToken>;
  /** The `getToken` path: a fresh cached token without any subscription or timer. */
  get(
    key: K,
    options?: {
      readonly signal?: AbortSignal | undefined;
      /** Handed to `acquire` when this call starts an acquisition (see {@link Acquire}). */
      readonly callerContext?: unknown;
    },
  ): Promise<AccessToken>;
  /**
   * Whether every hit given to `onHit` (and not withdrawn since) is still what `get` would
   * hand back at once with nothing else to do. When not, the registry first withdraws those
   * whose refresh time passed (`onHit(key, undefined)`), so the caller may look in its memo
   * again: what is still there is current. One comparison with the earliest refresh time of
   * all hits, no allocation; in real time on the event-loop turn's clock (`engine-clock.ts`).
   *
   * @example
   * ```ts
   * const hit = memo.get(scope);
   * if (hit !== undefined && (registry.hitsCurrent() || memo.get(scope) === hit)) return hit;
   * return registry.get(keyOf(scope));
   * ```
   */
  hitsCurrent(): boolean;
  /**
   * Ends the back-off after permanent refusals: every key that holds a usable token whose
   * last refresh was refused permanently (for `ClientSecretCredential`, `invalid_client`) is
   * due again at once: refreshed now when it has subscribers, on the next `get` otherwise.
   * For when what was refused has changed (a new client secret arrived); transient failures
   * keep their schedule. Returns how many keys were unblocked.
   *
   * @example
   * ```ts
   * secret$.subscribe(() => registry.retryRefused());
   * ```
   */
  retryRefused(): number;
  /**
   * A snapshot of every live key: its token's times, whether it is refreshing, its failures.
   * Reads state only: no timer, no request.
   */
  status(): KeyStatus<K>[];
  /** Completes every stream, cancels in-flight requests, forgets tokens. Idempotent. */
  close(): Promise<void>;
}

/** A token as a {@link SharedTokenCache} holds it (a `TokenStoreEntry` of `src/stores`). */
export interface SharedTokenEntry {
  readonly token: string;
  readonly expiresOnTimestamp: number;
  /** When the token is due for refresh (written without jitter, so each reader adds its own). */
  readonly refreshAfterTimestamp?: number | undefined;
}

/** The right to refresh one shared key for a while (a `TokenLease` of `src/stores`). */
export interface SharedTokenLease {
  release(): Promise<void>;
}

/**
 * Where the registry shares tokens with restarts of this process and with other processes:
 * the part of `src/stores`' `TokenStore` the engine calls, plus `keyOf`, which maps a
 * registry key to the cache's key. A `TokenStore` with a `keyOf` added satisfies it, so
 * `src/streams` never imports `src/stores`.
 *
 * Any rejection (a `TokenStoreUnavailableError` or anything else) makes the registry act on
 * its own for that acquisition: it logs the first failure of an outage and the recovery.
 *
 * @example
 * ```ts
 * const shared: SharedTokenCache<CredentialKey> = {
 *   keyOf: (key) => (key.shortLived ? undefined : storeKeyOf({ authorityHost, clientId, ...key })),
 *   read: (k) => store.read(k),
 *   write: (k, entry) => store.write(k, entry),
 *   lease: (k, ttl) => store.lease(k, ttl),
 *   watch: () => store.watch(),
 * };
 * createTokenRegistry({ acquire, classify, sharedCache: shared });
 * ```
 */
export interface SharedTokenCache<K extends TokenKey> {
  /** The cache key of `key`, or `undefined` to keep that key out of the cache (claims keys). */
  keyOf(key: K): string | undefined;
  /** The entry at `key`, or `undefined` (none, expired, or not trusted). */
  read(key: string): Promise<SharedTokenEntry | undefined>;
  /** Stores `entry` and tells the other holders (their `watch`). */
  write(key: string, entry: SharedTokenEntry): Promise<void>;
  /**
   * Takes the refresh lease of `key` for `ttlMs`, or `null` when another holder has it.
   * Caches shared by one process only may leave it out: every acquisition then proceeds.
   */
  lease?(key: string, ttlMs: number): Promise<SharedTokenLease | null>;
  /**
   * Every update written by any holder (this one included); `entry: undefined` for a delete
   * or a lease given back (a waiter for that key looks again). Subscribed once per registry.
   * Caches that cannot see other writers leave it out.
   */
  watch?(): Observable<{ readonly key: string; readonly entry: SharedTokenEntry | undefined }>;
}

/** Options shared by the registry factory. */
export interface TokenRegistryOptions<K extends TokenKey> {
  readonly acquire: Acquire<K>;
  readonly classify: Classify;
  /** @default asyncScheduler, with timers that do not keep a Node process alive */
  readonly scheduler?: SchedulerLike;
  /** @default Math.random */
  readonly random?: () => number;
  /** Called with each {@link RegistryEvent}; a throwing listener is ignored. @default undefined */
  readonly onEvent?: ((event: RegistryEvent<K>) => void) | undefined;
  /**
   * Called when the registry forgets a key: it holds nothing for it any longer (no usable
   * token, no acquisition in flight, no subscriber), so whatever the caller keeps per key
   * (state per tenant or per scope, say) can follow the live keys. A later request for the
   * key starts afresh.
   * @default undefined
   */
  readonly onForget?: ((key: K) => void) | undefined;
  /**
   * Called when a long-lived key's cache hit appears (`promise`, fulfilled with its new
   * token) or goes (`undefined`: its refresh is due, it failed, or the key was forgotten), so
   * that the caller may hand the promise back itself (a memo from scope strings to promises)
   * while {@link TokenRegistry.hitsCurrent} is true. A throwing callback is ignored.
   * @default undefined (no memo is told, and none needs the registry's heap of deadlines)
   */
  readonly onHit?: ((key: K, promise: Promise<AccessToken> | undefined) => void) | undefined;
  /**
   * Tokens shared with restarts and with other processes (persistent file cache, Redis
   * fleet): read on cold start and before each acquisition, written after it; with a lease,
   * one holder of the cache refreshes a key while the others wait for its token.
   * @default undefined (tokens live in this registry only)
   */
  readonly sharedCache?: SharedTokenCache<K> | undefined;
  /**
   * How long a refresh lease on the shared cache lasts (and so how long the others wait for
   * a holder that died): longer than the worst acquisition, two requests (the authority
   * metadata GET and the token POST) each up to the 30 s request timeout, plus a margin, so
   * no second holder acquires while the first still may. Never longer than the current token
   * stays usable.
   * @default 65_000
   */
  readonly leaseTtlMs?: number | undefined;
  /**
   * While another holder has the lease, how often the shared cache is read again (and the
   * lease tried): a waiter wakes at once on that holder's token or release, and this poll
   * covers what the watch cannot deliver (an update sent before the watch was active or
   * while it reconnected, a token sealed under another secret).
   * @default 1_000
   */
  readonly leasePollMs?: number | undefined;
}
