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
  /** Whether tokens are shared through a store (`status().tokenStore`). */
  readonly hasStore: boolean;
  /** @default false (see `CredentialTelemetryOptions.scopeAttribute`) */
  readonly scopeAttribute?: boolean | undefined;
  /** @default undefined (tokens live in memory) */
  readonly sharedCache?: SharedTokenCache<CredentialKey> | undefined;
  /** @default DEFAULT_LEASE_TTL_MS */
  readonly leaseTtlMs?: number | undefined;
}

/** The same text as one flat (sequential) string, whatever the shape of `text` in V8. */
function flatCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
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
 *   hasStore: false,
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
   * Validated keys by scope string (plain and CAE), for the hot path. An entry goes when the
   * registry forgets its key, so the memo follows the live keys (a fixed bound thrashes once
   * more scopes than it holds are in use, and every call then validates again).
   */
  readonly #plainKeys = new Map<string, CredentialKey>();
  readonly #caeKeys = new Map<string, CredentialKey>();
  /** Promises of `get` seen fulfilled: a cache hit returns one of them again. */
  readonly #settled = new WeakSet<Promise<AccessToken>>();
  #closed = false;

  constructor(options: EngineCredentialOptions) {
    this.#defaultTenant = options.defaultTenant;
    this.#keyTenant = options.defaultTenant.toLowerCase();
    this.#resolveTenant = options.resolveTenant;
    const { scheduler, acquire } = options;
    this.#observation = createCredentialObservation({
      scheduler,
      authorityHost: options.authorityHost,
      hasStore: options.hasStore,
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
      onForget: (key) => this.#forgetMemoised(key),
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
    if (abortSignal === undefined && (timeout === undefined || timeout <= 0)) {
      const pending =
        callerContext === undefined
          ? this.#registry.get(key)
          : this.#registry.get(key, { callerContext });
      // A cache hit hands back the entry's settled promise: no keep-alive needed (and none
      // costs anything on the hot path). Any other answer is awaited by a caller who has
      // no token yet, so the process must wait for it (the process-lifetime rule,
      // keep-alive.ts).
      return this.#settled.has(pending) ? pending : this.#awaited(pending);
    }
    return whileAwaited(this.#getWithSignal(key, abortSignal, timeout, callerContext));
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
    try {
      await this.#registry.close();
    } finally {
      this.#observation.close();
      this.#plainKeys.clear();
      this.#caeKeys.clear();
    }
  }

  #keyFor(scopes: string | string[], options: TokenStreamOptions | undefined): CredentialKey {
    const enableCae = options?.enableCae === true;
    const plain =
      typeof scopes === "string" &&
      (options === undefined ||
        (options.tenantId === undefined &&
          (options.claims === undefined || options.claims === "")));
    if (plain) {
      // The hot path: a memoised key per scope string, validated once.
      const memo = enableCae ? this.#caeKeys : this.#plainKeys;
      const known = memo.get(scopes);
      if (known !== undefined) return known;
      // A flat copy of the caller's string: one built per call (`${resource}/.default`) is a
      // tree of concatenated strings, which the key (and so the registry entry) would keep.
      const flat = flatCopy(scopes);
      const key = deriveKey(this.#defaultTenant, validateScopes(flat), undefined, enableCae);
      // Only a scope already in its canonical form is memoised, under the string the key
      // holds, so forgetting the key finds it (" x" and "x" are one key).
      if (!this.#closed && key.scopes[0] === flat) memo.set(flat, key);
      return key;
    }
    const validScopes = validateScopes(scopes);
    const claims = validateClaims(options?.claims);
    const tenant = this.#resolveTenant(options?.tenantId);
    return deriveKey(tenant, validScopes, claims, enableCae);
  }

  /** Drops the memo entry of a key the registry forgot. */
  #forgetMemoised(key: CredentialKey): void {
    const [scope] = key.scopes;
    if (key.shortLived || key.scopes.length !== 1 || scope === undefined) return;
    if (key.tenant !== this.#keyTenant) return;
    const memo = key.enableCae ? this.#caeKeys : this.#plainKeys;
    if (memo.get(scope)?.id === key.id) memo.delete(scope);
  }

  #awaited(pending: Promise<AccessToken>): Promise<AccessToken> {
    return whileAwaited(pending).then((token) => {
      this.#settled.add(pending);
      return token;
    });
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
