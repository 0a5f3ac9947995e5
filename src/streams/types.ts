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
 */
export type Acquire<K extends TokenKey> = (
  key: K,
  signal: AbortSignal,
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

/** Something that happened inside the registry, for logging and metrics. Never holds a token. */
export type RegistryEvent =
  | { readonly type: "acquire-start"; readonly keyId: string; readonly attempt: number }
  | {
      readonly type: "acquire-success";
      readonly keyId: string;
      readonly expiresOnTimestamp: number;
      readonly refreshAt: number;
    }
  | {
      readonly type: "acquire-failure";
      readonly keyId: string;
      readonly error: unknown;
      readonly transient: boolean;
      readonly retryInMs?: number | undefined;
    }
  | { readonly type: "key-evicted"; readonly keyId: string };

/** The keyed, self-refreshing, single-flight token registry. */
export interface TokenRegistry<K extends TokenKey> {
  /**
   * A shared stream of fresh tokens for `key`: emits the current usable token on subscribe
   * (if any), then every refreshed token; errors with a typed error only when no usable token
   * can be had; completes on `close()`.
   */
  stream(key: K): Observable<AccessToken>;
  /** The `getToken` path: a fresh cached token without any subscription or timer. */
  get(key: K, options?: { readonly signal?: AbortSignal | undefined }): Promise<AccessToken>;
  /** Completes every stream, cancels in-flight requests, forgets tokens. Idempotent. */
  close(): Promise<void>;
}

/** Options shared by the registry factory. */
export interface TokenRegistryOptions<K extends TokenKey> {
  readonly acquire: Acquire<K>;
  readonly classify: Classify;
  /** @default asyncScheduler, with timers that do not keep a Node process alive */
  readonly scheduler?: SchedulerLike;
  /** @default Math.random */
  readonly random?: () => number;
  readonly onEvent?: (event: RegistryEvent) => void;
}
