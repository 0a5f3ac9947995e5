/**
 * `reactiveCredential(source)`: the engine of `ClientSecretCredential` (single-flight per
 * key, cache, proactive refresh, retries of transient failures, the forced window, stores,
 * virtual time, the process keep-alive of awaited calls) over any `TokenCredential`'s
 * `getToken`: `DefaultAzureCredential`, `ManagedIdentityCredential`,
 * `WorkloadIdentityCredential`, `AzureCliCredential`, or a user's own.
 */
import {
  isTokenCredential,
  type AccessToken,
  type GetTokenOptions,
  type TokenCredential,
} from "@azure/core-auth";
import type { Observable, SchedulerLike } from "rxjs";
import {
  AbortError,
  AuthenticationError,
  CredentialUnavailableError,
  InvalidArgumentError,
} from "../errors/index.js";
import type { TokenStore } from "../stores/index.js";
import { unrefScheduler, type AcquiredToken, type RefreshPolicyOptions } from "../streams/index.js";
import type { TokenStreamOptions } from "./credential-options.js";
import { EngineCredential } from "./engine-credential.js";
import type { CredentialEvent, CredentialStatus } from "./events.js";
import type { CredentialKey } from "./key.js";
import { logger } from "./logger.js";
import { classifySourceFailure } from "./source-failures.js";
import { sharedCacheOf } from "./stores.js";
import { describeValue, validateTenantId } from "./validation.js";

/** Options of {@link reactiveCredential}. */
export interface ReactiveCredentialOptions {
  /**
   * Refresh schedule, forced window and retry knobs (see `RefreshPolicyOptions`). A
   * `refreshAfterTimestamp` the wrapped credential returns is honoured as the refresh time.
   * @default DEFAULT_REFRESH_POLICY
   */
  readonly refresh?: Partial<RefreshPolicyOptions> | undefined;
  /**
   * The clock and timers of the engine: pass an rxjs `TestScheduler` in tests, with a
   * wrapped credential whose timestamps are on the same clock. Token timestamps of the
   * wrapped credential are read as times on this scheduler's `now()` (`Date.now()` for the
   * default).
   * @default a scheduler whose timers do not keep Node alive
   */
  readonly scheduler?: SchedulerLike | undefined;
  /**
   * Where tokens are shared with other processes and restarts (a fleet's Redis:
   * `await createRedisTokenStore({ url, clientSecret, credentialId })`). Needs
   * `credentialId`. The caller owns the store: `close()` does not close it.
   * @default undefined (tokens live in memory)
   */
  readonly tokenStore?: TokenStore | undefined;
  /**
   * Names the wrapped credential's tokens in `tokenStore` (required with it): the wrapper
   * cannot tell which identity a `TokenCredential` stands for, so processes that share tokens
   * give the same name, and different identities different names (such as
   * `"orders-api/managed-identity"`). Use the same string as the Redis store's `credentialId`.
   * @default undefined
   */
  readonly credentialId?: string | undefined;
  /**
   * How long a `tokenStore` refresh lease lasts (how long the fleet waits for a process that
   * died while refreshing): longer than the wrapped credential's slowest `getToken`.
   * @default 65_000
   */
  readonly tokenStoreLeaseMs?: number | undefined;
}

/**
 * A `TokenCredential` run by rx-identity's engine: what {@link reactiveCredential} returns.
 *
 * @example
 * ```ts
 * const credential: ReactiveCredential = reactiveCredential(new DefaultAzureCredential());
 * credential.token$("https://storage.azure.com/.default").subscribe((t) => reauth(t.token));
 * ```
 */
export interface ReactiveCredential extends TokenCredential, AsyncDisposable {
  /**
   * A fresh cached token at once, otherwise one shared call of the wrapped credential per
   * key; while it waits for a token that is not there yet, the Node process stays alive.
   */
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken>;
  /**
   * Always-fresh tokens for `scopes`: the current usable token on subscribe, then every
   * refreshed one; completes on `close()`; errors only when no usable token can be had.
   */
  token$(scopes: string | string[], options?: TokenStreamOptions): Observable<AccessToken>;
  /**
   * Every event of the engine (calls of the wrapped credential started, succeeded and
   * failed, tokens served stale or taken from the store), as `ClientSecretCredential`'s
   * `events$`: hot, completes on `close()`, no token or claims in any event. The
   * `@azure/logger` lines and OpenTelemetry metrics are read from it.
   */
  readonly events$: Observable<CredentialEvent>;
  /** The health of every live key and of the token store: a snapshot, no call. */
  status(): CredentialStatus;
  /** Completes every stream, cancels calls in flight and forgets tokens. Idempotent. */
  close(): Promise<void>;
}

/** The identity of wrapped credentials' tokens in a store: their own authority namespace. */
const REACTIVE_AUTHORITY = "urn:rx-identity:reactive-credential";

/** The longest `credentialId` accepted. */
const MAX_CREDENTIAL_ID_LENGTH = 256;

function isScheduler(value: unknown): value is SchedulerLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as SchedulerLike).now === "function" &&
    typeof (value as SchedulerLike).schedule === "function"
  );
}

function validateOptions(options: unknown): ReactiveCredentialOptions {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(
      `reactiveCredential: options must be an object, got ${describeValue(options)}.`,
    );
  }
  const given = options as ReactiveCredentialOptions;
  if (given.scheduler !== undefined && !isScheduler(given.scheduler)) {
    throw new InvalidArgumentError(
      "reactiveCredential: scheduler must be an rxjs SchedulerLike (an object with now() and schedule()), such as a TestScheduler.",
    );
  }
  const store = given.tokenStore;
  if (store !== undefined) {
    if (
      typeof store !== "object" ||
      store === null ||
      typeof store.read !== "function" ||
      typeof store.write !== "function"
    ) {
      throw new InvalidArgumentError(
        "reactiveCredential: tokenStore must be a TokenStore (with read() and write()), such as createRedisTokenStore(...) or createFileTokenStore(...).",
      );
    }
    if (given.credentialId === undefined) {
      throw new InvalidArgumentError(
        'reactiveCredential: tokenStore needs a credentialId naming the wrapped credential\'s identity (such as "orders-api/managed-identity"): the wrapper cannot derive one, and processes sharing tokens must use the same name.',
      );
    }
  }
  const id: unknown = given.credentialId;
  if (
    id !== undefined &&
    (typeof id !== "string" ||
      id.trim() === "" ||
      id.length > MAX_CREDENTIAL_ID_LENGTH ||
      // eslint-disable-next-line no-control-regex
      /[\u0000-\u001f\u007f-\u009f]/u.test(id))
  ) {
    throw new InvalidArgumentError(
      `reactiveCredential: credentialId must be a non-empty string of at most ${MAX_CREDENTIAL_ID_LENGTH} characters without control characters, got ${describeValue(id)}.`,
    );
  }
  return given;
}

/** A permanent error for an answer of the wrapped credential that cannot be used. */
function unusableAnswer(description: string): AuthenticationError {
  return new AuthenticationError(
    0,
    { error: "invalid_response", errorDescription: description },
    { transient: false },
  );
}

/**
 * The engine's `acquire` over `source.getToken`: one call per acquisition, with the
 * acquisition's own signal (a caller who gives up aborts only its own wait; the shared call
 * is cancelled when nobody waits for it any more), and the key's tenant, claims and CAE.
 */
function acquireFrom(
  source: TokenCredential,
  scheduler: SchedulerLike,
): (key: CredentialKey, signal: AbortSignal) => Promise<AcquiredToken> {
  return async (key, signal): Promise<AcquiredToken> => {
    if (signal.aborted) throw new AbortError("The token request was aborted before it started.");
    const options: GetTokenOptions = {
      abortSignal: signal,
      ...(key.tenant !== "" ? { tenantId: key.tenant } : {}),
      ...(key.claims !== undefined ? { claims: key.claims } : {}),
      ...(key.enableCae ? { enableCae: true } : {}),
    };
    let answer: AccessToken | null;
    try {
      answer = await source.getToken([...key.scopes], options);
    } catch (error) {
      // The engine aborts only a call nobody waits for any more.
      if (signal.aborted) throw new AbortError("The token request was aborted.", { cause: error });
      // The source's own error, untouched: its name, message and class are what users know.
      throw error;
    }
    const scopes = key.scopes.join(" ");
    if (answer === null || answer === undefined) {
      throw new CredentialUnavailableError(
        `reactiveCredential: the wrapped credential's getToken returned no token for ${scopes}: it cannot get one in this environment.`,
      );
    }
    if (typeof answer.token !== "string" || answer.token === "") {
      throw unusableAnswer(
        `The wrapped credential's getToken for ${scopes} returned no token string.`,
      );
    }
    const expiresOn = answer.expiresOnTimestamp;
    const now = scheduler.now();
    if (typeof expiresOn !== "number" || !Number.isFinite(expiresOn) || expiresOn <= now) {
      throw unusableAnswer(
        `The wrapped credential's getToken for ${scopes} returned a token whose expiresOnTimestamp (${typeof expiresOn === "number" ? String(expiresOn) : typeof expiresOn}) is not a time after now (${now}): it cannot be cached or refreshed safely.`,
      );
    }
    // A refresh hint is optional: one that is malformed, past, or not before the expiry is
    // dropped, and the refresh policy's own rule applies.
    const refreshAfter = answer.refreshAfterTimestamp;
    const hint =
      typeof refreshAfter === "number" &&
      Number.isFinite(refreshAfter) &&
      refreshAfter > now &&
      refreshAfter < expiresOn
        ? refreshAfter
        : undefined;
    return { token: answer.token, expiresOnTimestamp: expiresOn, refreshAfterTimestamp: hint };
  };
}

/** The engine-backed credential {@link reactiveCredential} returns. */
class EngineBackedCredential implements ReactiveCredential {
  readonly #engine: EngineCredential;

  constructor(source: TokenCredential, options: ReactiveCredentialOptions) {
    const scheduler = options.scheduler ?? unrefScheduler;
    const store = options.tokenStore;
    this.#engine = new EngineCredential({
      defaultTenant: "",
      resolveTenant: (requested) => {
        if (requested === undefined) return "";
        // Whether the tenant is allowed is the wrapped credential's decision (its own
        // additionallyAllowedTenants); only its form is checked here, before any call.
        validateTenantId(requested, "tenantId");
        return requested;
      },
      acquire: acquireFrom(source, scheduler),
      classify: (error) => classifySourceFailure(error),
      scheduler,
      policy: options.refresh,
      sharedCache:
        store === undefined || options.credentialId === undefined
          ? undefined
          : sharedCacheOf(store, {
              authorityHost: REACTIVE_AUTHORITY,
              clientId: options.credentialId,
            }),
      leaseTtlMs: options.tokenStoreLeaseMs,
    });
  }

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    return this.#engine.getToken(scopes, options);
  }

  token$(scopes: string | string[], options?: TokenStreamOptions): Observable<AccessToken> {
    return this.#engine.token$(scopes, options);
  }

  get events$(): Observable<CredentialEvent> {
    return this.#engine.events$;
  }

  status(): CredentialStatus {
    return this.#engine.status();
  }

  close(): Promise<void> {
    return this.#engine.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** What `JSON.stringify` shows: nothing of the wrapped credential. */
  toJSON(): { type: string } {
    return { type: "reactiveCredential" };
  }

  /** What `util.inspect` and `console.log` show: nothing of the wrapped credential. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "ReactiveCredential {}";
  }
}

/**
 * Runs rx-identity's engine over any `TokenCredential`: the returned credential has the
 * same semantics as `ClientSecretCredential` (single-flight per key, cache, proactive
 * refresh honouring the source's `refreshAfterTimestamp`, retries of transient failures,
 * the forced window, token stores, virtual time, `token$`, `events$`, `status()`,
 * OpenTelemetry spans and metrics, `close`), and is itself a
 * `TokenCredential` every Azure SDK client takes.
 *
 * Errors of the wrapped credential pass through as they are (same objects: names, messages,
 * classes). `CredentialUnavailableError` is permanent; an `AuthenticationError` (or any
 * error with an HTTP `statusCode`) is retried for 408, 429 and 5xx and permanent otherwise;
 * a network failure before any response is retried. `abortSignal`, `tenantId`, `claims`
 * and `enableCae` reach the wrapped credential as `GetTokenOptions`; each call gets a signal
 * of its own, so one caller giving up never aborts the call others wait for. Bad scopes or
 * options fail with `InvalidArgumentError` before the wrapped credential is called.
 *
 * @param source - the credential to run (`new DefaultAzureCredential()`, say)
 * @param options - see {@link ReactiveCredentialOptions}
 * @throws {@link InvalidArgumentError} when `source` is not a `TokenCredential` or an option
 *   is malformed (such as `tokenStore` without `credentialId`)
 * @example
 * ```ts
 * import { DefaultAzureCredential } from "@azure/identity";
 * import { reactiveCredential } from "rx-identity";
 *
 * const credential = reactiveCredential(new DefaultAzureCredential());
 * const blobs = new BlobServiceClient(url, credential); // one token request however many calls
 * credential.token$("https://redis.azure.com/.default").subscribe((t) => redis.auth(t.token));
 * ```
 */
export function reactiveCredential(
  source: TokenCredential,
  options?: ReactiveCredentialOptions,
): ReactiveCredential {
  if (!isTokenCredential(source)) {
    throw new InvalidArgumentError(
      `reactiveCredential: source must be a TokenCredential (an object with a getToken method), got ${source === null ? "null" : typeof source}.`,
    );
  }
  const credential = new EngineBackedCredential(source, validateOptions(options));
  logger.info("reactiveCredential created.");
  return credential;
}
