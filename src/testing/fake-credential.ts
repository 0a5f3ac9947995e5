/**
 * A virtual-time stand-in for `ClientSecretCredential`: the real engine
 * (`createTokenRegistry`, so refresh times, single-flight, retries and the forced window are
 * the production ones) over an in-memory token source (`fake-token-source.ts`) whose answers
 * are Observables delayed on the given scheduler. No network, no MSAL, no real timers: it runs
 * inside `TestScheduler.run()` and on any `VirtualTimeScheduler`. This file owns the
 * credential's surface: its options, key derivation and validation, `getToken` with its abort
 * signal and timeout, `token$` and `close`.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import {
  asyncScheduler,
  defer,
  type Observable,
  type SchedulerLike,
  type Subscription,
} from "rxjs";
import { AuthenticationError, isAuthenticationError } from "../errors/index.js";
import { deriveKey, type CredentialKey } from "../credential/key.js";
import { resolveTenant } from "../credential/tenant.js";
import {
  validateAllowedTenants,
  validateClaims,
  validateClientId,
  validateScopes,
  validateTenantId,
} from "../credential/validation.js";
import {
  createTokenRegistry,
  type FailureClass,
  type RefreshPolicyOptions,
  type RegistryEvent,
  type TokenRegistry,
} from "../streams/index.js";
import {
  createFakeTokenSource,
  type FaultPhase,
  type TestFailure,
  type TestTokenRequest,
} from "./fake-token-source.js";

/** Options of {@link createTestCredential}. */
export interface TestCredentialOptions {
  /**
   * The clock and timers of the credential and of its token source. Tokens are minted on
   * `scheduler.now()`. Inside `TestScheduler.run()` the default is virtual too, because run
   * mode routes `asyncScheduler` through the test scheduler.
   * @default asyncScheduler
   */
  readonly scheduler?: SchedulerLike | undefined;
  /**
   * How long each token lives, in milliseconds from the moment it arrives. Change it later
   * with {@link TestCredential.setLifetime}.
   * @default 3_600_000 (one hour, like Entra ID)
   */
  readonly lifetimeMs?: number | undefined;
  /**
   * The server's `refresh_in` hint, in milliseconds from arrival, or `undefined` for none
   * (the engine then uses its own rule: half-life or 5 minutes before expiry).
   * @default undefined
   */
  readonly refreshInMs?: number | undefined;
  /**
   * How long every request (success or injected failure) takes, in scheduler milliseconds.
   * @default 0 (the answer still arrives asynchronously, as a scheduled action)
   */
  readonly latencyMs?: number | undefined;
  /**
   * The refresh policy, exactly as `ClientSecretCredential`'s `refresh` option.
   * @default DEFAULT_REFRESH_POLICY
   */
  readonly policy?: Partial<RefreshPolicyOptions> | undefined;
  /**
   * Randomness of the jitter and the retry backoff. The default makes refresh times exact
   * (no jitter) so marbles are deterministic; it also makes every backoff retry wait just the
   * policy's `retryFloorMs` (or the failure's `retryAfterMs`, when longer). With
   * `retryFloorMs: 0` and `latencyMs: 0`, an unbounded transient outage without `retryAfterMs`
   * would never let virtual time move: the credential then fails the request with a message
   * saying so (after {@link MAX_REQUESTS_PER_INSTANT} requests at one instant). Pass
   * `Math.random` or a seeded generator to test against the production spread.
   * @default () => 0
   */
  readonly random?: (() => number) | undefined;
  /**
   * The credential's tenant (the `tid` of its tokens).
   * @default "00000000-0000-0000-0000-00000000000a"
   */
  readonly tenantId?: string | undefined;
  /**
   * The application id (the `appid` of its tokens).
   * @default "00000000-0000-0000-0000-00000000000c"
   */
  readonly clientId?: string | undefined;
  /**
   * Tenants that `getToken(..., { tenantId })` may ask for, as `ClientSecretCredential` has
   * it; `"*"` allows any tenant.
   * @default ["*"]
   */
  readonly additionallyAllowedTenants?: readonly string[] | undefined;
  /**
   * Everything the engine reports (acquisitions, failures, retries), for tests that assert
   * on them.
   * @default undefined
   */
  readonly onEvent?: ((event: RegistryEvent) => void) | undefined;
}

/** Options of {@link TestCredential.token$}, as `ClientSecretCredential` has them. */
export interface TestTokenStreamOptions {
  /** @default the credential's tenant */
  readonly tenantId?: string | undefined;
  /** @default undefined */
  readonly claims?: string | undefined;
  /** @default false */
  readonly enableCae?: boolean | undefined;
}

/**
 * The credential {@link createTestCredential} returns: a `TokenCredential` (it passes
 * `isTokenCredential`) with `ClientSecretCredential`'s `getToken`, `token$` and `close`, plus
 * controls over its in-memory token source.
 */
export interface TestCredential extends TokenCredential, AsyncDisposable {
  /** As `ClientSecretCredential.getToken`; `requestOptions.timeout` counts scheduler time. */
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken>;
  /** As `ClientSecretCredential.token$`. */
  token$(scopes: string | string[], options?: TestTokenStreamOptions): Observable<AccessToken>;
  /** As `ClientSecretCredential.close`. */
  close(): Promise<void>;
  /** Queues failures: the next requests fail as `failure` says, before any later `fail`. */
  fail(failure: TestFailure): void;
  /** Applies a fault schedule (outages at offsets from now); unsubscribe to cancel it. */
  scheduleFaults(schedule: readonly FaultPhase[]): Subscription;
  /** Drops every queued failure: the next request succeeds. */
  recover(): void;
  /** Sets the lifetime (and `refresh_in`) of the tokens minted from now on. */
  setLifetime(lifetimeMs: number, refreshInMs?: number): void;
  /** Every request the engine has made, oldest first. */
  readonly requests: readonly TestTokenRequest[];
  /** How many requests were made (that match `filter`, when given). */
  requestCount(filter?: (request: TestTokenRequest) => boolean): number;
}

const DEFAULT_TENANT = "00000000-0000-0000-0000-00000000000a";
const DEFAULT_CLIENT = "00000000-0000-0000-0000-00000000000c";

/** Failures are classified as `ClientSecretCredential` classifies the service's errors. */
function classify(error: unknown): FailureClass {
  return isAuthenticationError(error)
    ? { transient: error.transient, retryAfterMs: error.retryAfterMs }
    : { transient: false };
}

/**
 * Creates a {@link TestCredential}: `ClientSecretCredential`'s surface and engine over an
 * in-memory token source on virtual time, for unit tests of code that uses a credential.
 *
 * Each request is an Observable delayed by `latencyMs` on `scheduler`, answered with a
 * JWT-shaped unsigned token (`alg: "none"`; claims `aud`, `iss`, `tid`, `appid`, `iat`,
 * `nbf`, `exp`, `scp`, a counter `n`) minted on `scheduler.now()`, or with an injected
 * `AuthenticationError`.
 *
 * @example
 * ```ts
 * import { TestScheduler } from "rxjs/testing";
 * import { createTestCredential } from "rx-identity/testing";
 *
 * const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
 * scheduler.run(({ expectObservable }) => {
 *   const credential = createTestCredential({ lifetimeMs: 100, latencyMs: 2 });
 *   // Tokens arrive at 2 ms, refresh at half-life (50 ms) and arrive 2 ms later.
 *   expectObservable(credential.token$("api://app/.default").pipe(map((t) => t.expiresOnTimestamp)), "^ 60ms !")
 *     .toBe("--a 51ms b", { a: 102, b: 154 });
 * });
 * ```
 */
export function createTestCredential(options: TestCredentialOptions = {}): TestCredential {
  const scheduler = options.scheduler ?? asyncScheduler;
  const clientId = options.clientId ?? DEFAULT_CLIENT;
  const source = createFakeTokenSource({
    scheduler,
    clientId,
    lifetimeMs: options.lifetimeMs,
    refreshInMs: options.refreshInMs,
    latencyMs: options.latencyMs,
  });
  const tenantId = options.tenantId ?? DEFAULT_TENANT;
  validateTenantId(tenantId, "tenantId");
  validateClientId(clientId);
  const allowedTenants = validateAllowedTenants(options.additionallyAllowedTenants ?? ["*"]);
  let closed = false;

  const registry: TokenRegistry<CredentialKey> = createTokenRegistry<CredentialKey>({
    acquire: source.acquire,
    classify,
    scheduler,
    random: options.random ?? (() => 0),
    policy: options.policy,
    ...(options.onEvent !== undefined ? { onEvent: options.onEvent } : {}),
  });

  const keyFor = (
    scopes: string | string[],
    streamOptions: TestTokenStreamOptions | undefined,
  ): CredentialKey =>
    // The production validation, so bad input fails here exactly as it would in production.
    deriveKey(
      resolveTenant(tenantId, streamOptions?.tenantId, allowedTenants),
      validateScopes(scopes),
      validateClaims(streamOptions?.claims),
      streamOptions?.enableCae === true,
    );

  const getWithSignal = async (
    key: CredentialKey,
    abortSignal: GetTokenOptions["abortSignal"],
    timeout: number | undefined,
  ): Promise<AccessToken> => {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    if (abortSignal?.aborted === true) controller.abort();
    abortSignal?.addEventListener("abort", onAbort);
    let timedOut = false;
    // The timeout runs on the scheduler, so a test can time out a request in virtual time.
    const timeoutTimer =
      timeout !== undefined && timeout > 0
        ? scheduler.schedule(() => {
            timedOut = true;
            controller.abort();
          }, timeout)
        : undefined;
    try {
      return await registry.get(key, { signal: controller.signal });
    } catch (error) {
      if (timedOut && abortSignal?.aborted !== true) {
        throw new AuthenticationError(
          0,
          {
            error: "request_timeout",
            errorDescription: `No token arrived within requestOptions.timeout (${timeout} ms): raise the timeout, or check that the authority host is reachable.`,
          },
          { transient: true, cause: error },
        );
      }
      throw error;
    } finally {
      timeoutTimer?.unsubscribe();
      abortSignal?.removeEventListener("abort", onAbort);
    }
  };

  const credential: TestCredential = {
    getToken(scopes, getOptions) {
      let key: CredentialKey;
      try {
        key = keyFor(scopes, getOptions);
      } catch (error) {
        // Validation throws our typed errors; hand them back asynchronously like every failure.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        return Promise.reject(error);
      }
      const timeout = getOptions?.requestOptions?.timeout;
      if (getOptions?.abortSignal === undefined && (timeout === undefined || timeout <= 0)) {
        return registry.get(key);
      }
      return getWithSignal(key, getOptions?.abortSignal, timeout);
    },
    token$(scopes, streamOptions) {
      return defer(() => registry.stream(keyFor(scopes, streamOptions)));
    },
    async close() {
      if (closed) return;
      closed = true;
      source.close();
      await registry.close();
    },
    [Symbol.asyncDispose]() {
      return credential.close();
    },
    fail: source.fail,
    scheduleFaults: source.scheduleFaults,
    recover: source.recover,
    setLifetime: source.setLifetime,
    get requests(): readonly TestTokenRequest[] {
      return source.requests;
    },
    requestCount: source.requestCount,
  };
  return credential;
}
