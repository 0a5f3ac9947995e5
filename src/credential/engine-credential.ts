/**
 * The engine-backed credential plumbing that `ClientSecretCredential` and `reactiveCredential`
 * share: scopes and options validated into registry keys (memoised for the hot path), the
 * `getToken` adapter with its fast path, the process keep-alive of awaited calls, `token$`,
 * `close()`, and what the credential tells about itself (`events$`, `status()`, the log and
 * OpenTelemetry, observation.ts). What differs between them is only where tokens come from
 * (`acquire`), how its failures are classified, and how a per-request tenant is resolved.
 */
import type { AccessToken, GetTokenOptions } from "@azure/core-auth";
import { defer, type Observable, type SchedulerLike } from "rxjs";
import { AuthenticationError } from "../errors/index.js";
import {
  createTokenRegistry,
  type AcquiredToken,
  type Classify,
  type RefreshPolicyOptions,
  type SharedTokenCache,
  type TokenRegistry,
} from "../streams/index.js";
import type { TokenStreamOptions } from "./credential-options.js";
import type { CredentialEvent, CredentialStatus } from "./events.js";
import { holdUntilFirstValue, whileAwaited } from "./keep-alive.js";
import { deriveKey, type CredentialKey } from "./key.js";
import { createCredentialObservation, type CredentialObservation } from "./observation.js";
import type { SecretSnapshot } from "./secret-source.js";
import { callSignal } from "./shared-signal.js";
import { validateClaims, validateScopes } from "./validation.js";

/** Options of {@link EngineCredential}. */
export interface EngineCredentialOptions {
  /** The tenant of a request that names none, as keys hold it. */
  readonly defaultTenant: string;
  /**
   * The tenant of a request that names `requested`: validated, and allowed by the
   * credential's configuration.
   * @throws a typed error for a malformed or disallowed tenant
   */
  readonly resolveTenant: (requested: string | undefined) => string;
  /** One acquisition: a Promise that rejects promptly once `signal` aborts. */
  readonly acquire: (key: CredentialKey, signal: AbortSignal) => Promise<AcquiredToken>;
  readonly classify: Classify;
  readonly scheduler: SchedulerLike;
  /** @default DEFAULT_REFRESH_POLICY */
  readonly policy?: Partial<RefreshPolicyOptions> | undefined;
  /**
   * The authority the acquisitions ask, for the token request spans' `server.address` and
   * `url.full`.
   * @default undefined (spans without them: a wrapped credential asks whom it asks)
   */
  readonly authorityHost?: string | undefined;
  /** @default false (see `CredentialTelemetryOptions.scopeAttribute`) */
  readonly scopeAttribute?: boolean | undefined;
  /** @default undefined (tokens live in memory) */
  readonly sharedCache?: SharedTokenCache<CredentialKey> | undefined;
  /** @default DEFAULT_LEASE_TTL_MS */
  readonly leaseTtlMs?: number | undefined;
}

/**
 * The internalised copy of `text` (property names are internalised): one flat (sequential)
 * string, whatever the shape of `text` in V8 (a caller's string built per call as
 * `${resource}/.default` is a tree of concatenations, which a key would otherwise keep, and a
 * slice keeps its whole parent). V8 also turns `text` itself into a reference to that copy
 * (a ThinString, which its GC then short-cuts), so a caller that keeps its scope strings
 * hands the memo the very string it holds, and the Map compares pointers, not characters: at
 * 10,000 keys read round-robin, that halved the cost of a hit (an engine detail, measured).
 */
function internalized(text: string): string {
  return Object.keys({ [text]: 0 })[0] ?? text;
}

/**
 * The token engine behind a credential: `getToken`, `token$` and `close` over one registry.
 *
 * @example
 * ```ts
 * const engine = new EngineCredential({
 *   defaultTenant: "",
 *   resolveTenant: (tenant) => tenant ?? "",
 *   acquire: (key, signal) => fetchToken(key, signal),
 *   classify: classifySourceFailure,
 *   scheduler: unrefScheduler,
 * });
 * const token = await engine.getToken("https://vault.azure.net/.default");
 * await engine.close();
 * ```
 */
export class EngineCredential {
  readonly #registry: TokenRegistry<CredentialKey>;
  readonly #observation: CredentialObservation;
  readonly #defaultTenant: string;
  /** The default tenant as keys hold it. */
  readonly #keyTenant: string;
  readonly #resolveTenant: (requested: string | undefined) => string;
  /**
   * The cache hits of the default tenant's single-scope keys by scope string (plain and
   * CAE): the promises the registry tells of (`onHit`), valid while `hitsCurrent()` is. A hit
   * is a bare `Map` lookup and one comparison with the earliest refresh time (issue #12). An
   * entry goes when its key's hit does (refresh due, failure, key forgotten), so the memo
   * follows the live keys (a fixed bound thrashes once more scopes than it holds are in use).
   */
  readonly #plainKeys = new Map<string, Promise<AccessToken>>();
  readonly #caeKeys = new Map<string, Promise<AccessToken>>();
  #closed = false;

  constructor(options: EngineCredentialOptions) {
    this.#defaultTenant = options.defaultTenant;
    this.#keyTenant = options.defaultTenant.toLowerCase();
    this.#resolveTenant = options.resolveTenant;
    const { scheduler, acquire } = options;
    this.#observation = createCredentialObservation({
      scheduler,
      authorityHost: options.authorityHost,
      // Tokens are shared through a store exactly when there is a shared cache.
      hasStore: options.sharedCache !== undefined,
      keys: () => this.#registry.status(),
      scopeAttribute: options.scopeAttribute,
    });
    const { traceRequest } = this.#observation;
    this.#registry = createTokenRegistry<CredentialKey>({
      acquire: (key, signal, callerContext) =>
        traceRequest(key, callerContext, () => acquire(key, signal)),
      classify: options.classify,
      scheduler,
      policy: options.policy,
      onEvent: this.#observation.onRegistryEvent,
      onHit: (key, promise) => this.#onHit(key, promise),
      sharedCache: options.sharedCache,
      leaseTtlMs: options.leaseTtlMs,
    });
  }

  /**
   * `TokenCredential.getToken`: a fresh cached token at once (no subscription, no timer, no
   * keep-alive), otherwise one shared acquisition per key, awaited with the process held
   * alive (keep-alive.ts).
   */
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    // The cache hit: a settled promise at once. A hit makes no request, so the signal (if
    // not aborted), the timeout and the caller's tracing context have nothing to act on. It
    // is kept apart from the slow path, so that it is all that inlines into the caller: at
    // 10,000 keys read round-robin, one getToken holding both cost about 1.25x this one.
    if (typeof scopes === "string") {
      const memo = options === undefined ? this.#plainKeys : this.#hitMemo(options);
      const hit = memo?.get(scopes);
      // When a refresh time passed, the registry first withdraws what is due: look again.
      if (hit !== undefined && (this.#registry.hitsCurrent() || memo?.get(scopes) === hit)) {
        return hit;
      }
    }
    return this.#getTokenAfresh(scopes, options);
  }

  /** `getToken` past the cache hit: validation, the key, one shared acquisition. */
  #getTokenAfresh(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    let key: CredentialKey;
    try {
      key = this.#keyFor(scopes, options);
    } catch (error) {
      // Validation throws our typed errors; hand them back asynchronously like every failure.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(error);
    }
    const abortSignal = options?.abortSignal;
    const timeout = options?.requestOptions?.timeout;
    // An Azure SDK client's span: our token request, if one is made, is traced under it.
    const callerContext = options?.tracingOptions?.tracingContext;
    const pending =
      abortSignal === undefined && (timeout === undefined || timeout <= 0)
        ? this.#registry.get(key, callerContext === undefined ? undefined : { callerContext })
        : this.#getWithSignal(key, abortSignal, timeout, callerContext);
    // Not a cache hit: awaited by a caller who may have no token yet, so the process must
    // wait for it (the process-lifetime rule, keep-alive.ts).
    return whileAwaited(pending);
  }

  /** Every event of the credential, hot; completes on `close()` (observation.ts). */
  get events$(): Observable<CredentialEvent> {
    return this.#observation.events$;
  }

  /** The health of every live key and of the token store: a snapshot, no request. */
  status(): CredentialStatus {
    return this.#observation.status(this.#closed);
  }

  /** The shared, self-refreshing stream of `scopes`; bad input arrives as its error. */
  token$(scopes: string | string[], options: TokenStreamOptions = {}): Observable<AccessToken> {
    // defer: bad input arrives as an error notification, like every other failure.
    // holdUntilFirstValue: a subscriber with no token yet keeps the process alive until it
    // has one (or the error); refreshes after that are background work (keep-alive.ts).
    return defer(() => this.#registry.stream(this.#keyFor(scopes, options))).pipe(
      holdUntilFirstValue(),
    );
  }

  /**
   * Refreshes at once every key whose refresh was refused and that still holds a usable
   * token (a new client secret arrived: its back-off is over).
   * @returns how many keys were refreshed
   */
  retryRefused(): number {
    return this.#registry.retryRefused();
  }

  /** Tells `events$` that the client secret was rotated (fingerprints only, observation.ts). */
  onSecretRotated(next: SecretSnapshot, previous: SecretSnapshot): void {
    this.#observation.onSecretRotated(next, previous);
  }

  /** Completes every stream, cancels in-flight requests, forgets tokens. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // No hit once close() was called (onHit tells nothing more either).
    this.#plainKeys.clear();
    this.#caeKeys.clear();
    try {
      await this.#registry.close();
    } finally {
      this.#observation.close();
    }
  }

  /**
   * The memo a call with these options may hit: the default tenant, no claims, no aborted
   * signal; `undefined` for any other call.
   */
  #hitMemo(options: GetTokenOptions): Map<string, Promise<AccessToken>> | undefined {
    if (
      options.tenantId !== undefined ||
      (options.claims !== undefined && options.claims !== "") ||
      options.abortSignal?.aborted === true
    ) {
      return undefined;
    }
    return options.enableCae === true ? this.#caeKeys : this.#plainKeys;
  }

  /**
   * Keeps or drops the hit of `key` under its scope, for the keys a hit can serve: the
   * default tenant's, one scope, no claims. The scope is the key's canonical one (" x" and
   * "x" are one key): a caller passing another spelling goes through the slow path.
   */
  #onHit(key: CredentialKey, promise: Promise<AccessToken> | undefined): void {
    const [scope] = key.scopes;
    if (key.shortLived || key.scopes.length !== 1 || scope === undefined) return;
    if (key.tenant !== this.#keyTenant) return;
    const memo = key.enableCae ? this.#caeKeys : this.#plainKeys;
    if (promise === undefined) memo.delete(scope);
    else if (!this.#closed) memo.set(internalized(scope), promise);
  }

  #keyFor(scopes: string | string[], options: TokenStreamOptions | undefined): CredentialKey {
    const enableCae = options?.enableCae === true;
    if (
      typeof scopes === "string" &&
      (options === undefined ||
        (options.tenantId === undefined && (options.claims === undefined || options.claims === "")))
    ) {
      // The internalised copy of the caller's string, which the key (and so the memo) keeps.
      const flat = internalized(scopes);
      return deriveKey(this.#defaultTenant, validateScopes(flat), undefined, enableCae);
    }
    const validScopes = validateScopes(scopes);
    const claims = validateClaims(options?.claims);
    const tenant = this.#resolveTenant(options?.tenantId);
    return deriveKey(tenant, validScopes, claims, enableCae);
  }

  async #getWithSignal(
    key: CredentialKey,
    abortSignal: GetTokenOptions["abortSignal"],
    timeout: number | undefined,
    callerContext: unknown,
  ): Promise<AccessToken> {
    const call = callSignal(abortSignal, timeout);
    try {
      return await this.#registry.get(key, { signal: call.signal, callerContext });
    } catch (error) {
      if (call.timedOut() && abortSignal?.aborted !== true) {
        throw new AuthenticationError(
          0,
          {
            error: "request_timeout",
            errorDescription: `No token arrived within requestOptions.timeout (${timeout} ms): raise the timeout, or check that the token service (the authority host, or the wrapped credential's endpoint) is reachable.`,
          },
          { transient: true, cause: error },
        );
      }
      throw error;
    } finally {
      call.dispose();
    }
  }
}
