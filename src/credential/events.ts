/**
 * The credential's public events (`credential.events$`) and health status
 * (`credential.status()`): the engine's events and key states, told in the credential's terms
 * (tenant, scopes, CAE flag) and with failures summarised to what is safe to show. Logging,
 * status and metrics all read these; none of them holds a token, a secret or a claims value.
 */
import { isAuthenticationError } from "../errors/index.js";
import type { KeyFailure, KeyStatus, RegistryEvent } from "../streams/types.js";
import type { CredentialKey } from "./key.js";
import type { SecretSnapshot } from "./secret-source.js";

/**
 * A failure as events and status show it: what a log line or a dashboard needs to say what
 * went wrong and what to do, and nothing else (the error object itself, with its `cause`
 * chain and raw response, stays out).
 *
 * @example
 * ```ts
 * credential.events$.subscribe((event) => {
 *   if (event.type === "acquisition-failed" && event.failure.aadstsCodes.includes(7000222)) {
 *     alert("The client secret expired: rotate it.");
 *   }
 * });
 * ```
 */
export interface FailureSummary {
  /** Whether trying again later may succeed (network errors, timeouts, 408, 429, 5xx). */
  readonly transient: boolean;
  /** The error's class name: `AuthenticationError`, `CredentialUnavailableError`, `AbortError`... */
  readonly name: string;
  /** The error's message (ours never hold a secret: the error mapper scrubs them). */
  readonly message: string;
  /** The HTTP status of the token endpoint's answer; 0 when none arrived. */
  readonly status: number | undefined;
  /** The OAuth error, such as `invalid_client` or `temporarily_unavailable`. */
  readonly error: string | undefined;
  /** AADSTS codes, such as `[7000222]` (an expired client secret). */
  readonly aadstsCodes: readonly number[];
  readonly correlationId: string | undefined;
  /** The service's trace id: quote it to Microsoft support. */
  readonly traceId: string | undefined;
}

/** What every per-key event says about its key. */
export interface CredentialEventKey {
  /** When it happened, epoch ms on the credential's scheduler clock. */
  readonly at: number;
  /** The resolved, lower-cased tenant of the key. */
  readonly tenantId: string;
  /** The key's scopes, trimmed, de-duplicated and sorted. */
  readonly scopes: readonly string[];
  /** Whether the key's tokens are CAE-enabled (`cp1`). */
  readonly enableCae: boolean;
  /** Whether the key asks for claims (their value is never shown). */
  readonly hasClaims: boolean;
}

/**
 * Everything `credential.events$` reports, discriminated by `type`:
 *
 * - `acquisition-started`: an attempt to get a token (from Entra ID, or the shared store)
 *   began; `attempt` counts retries from 0.
 * - `acquisition-succeeded`: Entra ID issued a token: how long the attempt took, when the
 *   token expires and when it will be refreshed.
 * - `acquisition-failed`: an attempt failed: transient or permanent, status, AADSTS codes,
 *   and `retryInMs` when another attempt is scheduled.
 * - `token-served-stale`: a refresh failed while a usable token is held: that token goes on
 *   being served until `usableUntil` (once per outage).
 * - `token-expired`: the token stream subscribers held expired while retries go on.
 * - `token-from-store`: a token another process (or an earlier run) wrote to the shared
 *   store was taken instead of asking Entra ID.
 * - `store-unavailable` / `store-available`: the token store failed (this process then
 *   acquires on its own) and answered again.
 * - `key-forgotten`: an idle claims key was dropped to make room (past `maxShortLivedKeys`);
 *   other idle keys leave memory, and `status()`, without an event.
 * - `secret-rotated`: a newer client secret is in use: the new secret's fingerprint and the
 *   one it replaced (8 hex digits of a SHA-256, `secretFingerprint`), never a secret.
 *
 * @example
 * ```ts
 * credential.events$.subscribe((event) => {
 *   if (event.type === "acquisition-failed") {
 *     console.warn(`${event.scopes.join(" ")}: ${event.failure.name} ${event.failure.status}`);
 *   }
 * });
 * ```
 */
export type CredentialEvent =
  | (CredentialEventKey & { readonly type: "acquisition-started"; readonly attempt: number })
  | (CredentialEventKey & {
      readonly type: "acquisition-succeeded";
      readonly attempt: number;
      /** How long the successful attempt took, in ms (fractional in real time: a monotonic clock). */
      readonly durationMs: number;
      readonly expiresOnTimestamp: number;
      /** When the token will be refreshed (jitter included). */
      readonly refreshAt: number;
    })
  | (CredentialEventKey & {
      readonly type: "acquisition-failed";
      readonly attempt: number;
      /** How long the failed attempt took, in ms (fractional in real time: a monotonic clock). */
      readonly durationMs: number;
      readonly failure: FailureSummary;
      /** When the next attempt starts; `undefined` when no usable token is left and none is. */
      readonly retryInMs: number | undefined;
    })
  | (CredentialEventKey & {
      readonly type: "token-served-stale";
      readonly expiresOnTimestamp: number;
      /** Until when the held token goes on being handed out. */
      readonly usableUntil: number;
      readonly failure: FailureSummary;
    })
  | (CredentialEventKey & { readonly type: "token-expired"; readonly failure: FailureSummary })
  | (CredentialEventKey & {
      readonly type: "token-from-store";
      readonly expiresOnTimestamp: number;
      readonly refreshAt: number;
    })
  | (CredentialEventKey & { readonly type: "store-unavailable"; readonly failure: FailureSummary })
  | (CredentialEventKey & { readonly type: "store-available" })
  | (CredentialEventKey & { readonly type: "key-forgotten" })
  | {
      readonly type: "secret-rotated";
      /** When it happened, epoch ms on the credential's scheduler clock. */
      readonly at: number;
      /** 2 at the first rotation, one more at each after it. */
      readonly version: number;
      /** The fingerprint of the secret now in use (never the secret). */
      readonly fingerprint: string;
      /** The fingerprint of the secret it replaced. */
      readonly previousFingerprint: string;
    };

/** Every `type` a {@link CredentialEvent} can have. */
export type CredentialEventType = CredentialEvent["type"];

/** The health of one live key, as `credential.status()` reports it. Times are epoch ms. */
export interface TokenStatus {
  readonly tenantId: string;
  readonly scopes: readonly string[];
  readonly enableCae: boolean;
  readonly hasClaims: boolean;
  /** When the held token expires, or `undefined` when none is held. */
  readonly expiresOnTimestamp: number | undefined;
  /** Until when the held token is handed out (its expiry minus the forced window). */
  readonly usableUntil: number | undefined;
  /** When the held token is due for refresh. */
  readonly refreshAt: number | undefined;
  /** Whether an acquisition is in flight or waiting between retries. */
  readonly refreshing: boolean;
  /** Whether the held token is past its refresh time while its refreshes fail. */
  readonly servedStale: boolean;
  /** How many attempts failed in a row since the last token (0 when healthy). */
  readonly consecutiveFailures: number;
  /** The latest of those failures, with when it happened. */
  readonly lastFailure: (FailureSummary & { readonly at: number }) | undefined;
}

/**
 * What `credential.status()` returns: every live key, and the token store's availability.
 *
 * @example
 * ```ts
 * const { keys } = credential.status();
 * const failing = keys.filter((key) => key.consecutiveFailures > 0);
 * ```
 */
export interface CredentialStatus {
  /** When the snapshot was taken, epoch ms on the credential's scheduler clock. */
  readonly at: number;
  /** Whether `close()` was called (then `keys` is empty). */
  readonly closed: boolean;
  /** `"none"` without a token store; otherwise whether it answered last time. */
  readonly tokenStore: "none" | "available" | "unavailable";
  readonly keys: readonly TokenStatus[];
}

/**
 * The safe summary of `error`.
 *
 * @example
 * ```ts
 * summarizeFailure(new AuthenticationError(401, { error: "invalid_client", errorDescription: "AADSTS7000215" },
 *   { transient: false }), false).error; // "invalid_client"
 * ```
 */
export function summarizeFailure(error: unknown, transient: boolean): FailureSummary {
  if (isAuthenticationError(error)) {
    const response = error.errorResponse;
    return {
      transient,
      name: error.name,
      message: error.message,
      status: error.statusCode,
      error: response.error,
      aadstsCodes: response.errorCodes ?? [],
      correlationId: response.correlationId,
      traceId: response.traceId,
    };
  }
  const named = error instanceof Error;
  return {
    transient,
    name: named ? error.name : typeof error,
    message: named ? error.message : String(error),
    status: undefined,
    error: undefined,
    aadstsCodes: [],
    correlationId: undefined,
    traceId: undefined,
  };
}

function keyFields(key: CredentialKey, at: number): CredentialEventKey {
  return {
    at,
    tenantId: key.tenant,
    scopes: key.scopes,
    enableCae: key.enableCae,
    hasClaims: key.claims !== undefined,
  };
}

/**
 * The public form of one engine event, at `at`.
 *
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify, onEvent: (e) => events.next(toCredentialEvent(e, Date.now())) });
 * ```
 */
export function toCredentialEvent(
  event: RegistryEvent<CredentialKey>,
  at: number,
): CredentialEvent {
  const base = keyFields(event.key, at);
  switch (event.type) {
    case "acquire-start":
      return { ...base, type: "acquisition-started", attempt: event.attempt };
    case "acquire-success":
      return {
        ...base,
        type: "acquisition-succeeded",
        attempt: event.attempt,
        durationMs: event.durationMs,
        expiresOnTimestamp: event.expiresOnTimestamp,
        refreshAt: event.refreshAt,
      };
    case "acquire-failure":
      return {
        ...base,
        type: "acquisition-failed",
        attempt: event.attempt,
        durationMs: event.durationMs,
        failure: summarizeFailure(event.error, event.transient),
        retryInMs: event.retryInMs,
      };
    case "token-served-stale":
      return {
        ...base,
        type: "token-served-stale",
        expiresOnTimestamp: event.expiresOnTimestamp,
        usableUntil: event.usableUntil,
        failure: summarizeFailure(event.error, event.transient),
      };
    case "token-expired":
      return { ...base, type: "token-expired", failure: summarizeFailure(event.error, true) };
    case "shared-token":
      return {
        ...base,
        type: "token-from-store",
        expiresOnTimestamp: event.expiresOnTimestamp,
        refreshAt: event.refreshAt,
      };
    case "shared-cache-unavailable":
      return { ...base, type: "store-unavailable", failure: summarizeFailure(event.error, true) };
    case "shared-cache-available":
      return { ...base, type: "store-available" };
    case "key-evicted":
      return { ...base, type: "key-forgotten" };
  }
}

/**
 * The event of a rotation from `previous` to `next`, at `at`: fingerprints only.
 *
 * @example
 * ```ts
 * createSecretSource(secret$, { scheduler, onRotate: (next, previous) =>
 *   events.next(secretRotatedEvent(next, previous, scheduler.now())) });
 * ```
 */
export function secretRotatedEvent(
  next: SecretSnapshot,
  previous: SecretSnapshot,
  at: number,
): CredentialEvent {
  return {
    type: "secret-rotated",
    at,
    version: next.version,
    fingerprint: next.fingerprint,
    previousFingerprint: previous.fingerprint,
  };
}

function failureOf(failure: KeyFailure | undefined): TokenStatus["lastFailure"] {
  if (failure === undefined) return undefined;
  return { ...summarizeFailure(failure.error, failure.transient), at: failure.at };
}

/**
 * The public form of one key's engine status.
 *
 * @example
 * ```ts
 * registry.status().map(toTokenStatus);
 * ```
 */
export function toTokenStatus(status: KeyStatus<CredentialKey>): TokenStatus {
  const { key } = status;
  return {
    tenantId: key.tenant,
    scopes: key.scopes,
    enableCae: key.enableCae,
    hasClaims: key.claims !== undefined,
    expiresOnTimestamp: status.expiresOnTimestamp,
    usableUntil: status.usableUntil,
    refreshAt: status.refreshAt,
    refreshing: status.refreshing,
    servedStale: status.servedStale,
    consecutiveFailures: status.lastFailure?.count ?? 0,
    lastFailure: failureOf(status.lastFailure),
  };
}
