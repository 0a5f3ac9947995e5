import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import {
  asyncScheduler,
  defer,
  map,
  mergeMap,
  Subscription,
  tap,
  throwError,
  timer,
  type Observable,
  type SchedulerLike,
} from "rxjs";
import {
  AuthenticationError,
  CredentialUnavailableError,
  InvalidArgumentError,
  isAuthenticationError,
} from "../errors/index.js";
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
  type AcquiredToken,
  type FailureClass,
  type RefreshPolicyOptions,
  type RegistryEvent,
  type TokenRegistry,
} from "../streams/index.js";

/**
 * A virtual-time stand-in for `ClientSecretCredential`: the real engine
 * (`createTokenRegistry`, so refresh times, single-flight, retries and the forced window are
 * the production ones) over an in-memory token source whose answers are Observables delayed
 * on the given scheduler. No network, no MSAL, no real timers: it runs inside
 * `TestScheduler.run()` and on any `VirtualTimeScheduler`.
 */

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
   * (no jitter) so marbles are deterministic; it also makes backoff retries immediate, so
   * with `latencyMs: 0` an unbounded transient outage without `retryAfterMs` would never let
   * virtual time move: the credential then fails the request with a message saying so (after
   * {@link MAX_REQUESTS_PER_INSTANT} requests at one instant). Pass `Math.random` or a seeded
   * generator to test against the production spread.
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

/** A failure to inject with {@link TestCredential.fail}. */
export interface TestFailure {
  /** Whether the engine may retry it (like a 503), or must not (like `invalid_client`). */
  readonly transient: boolean;
  /**
   * HTTP status of the failure (0 means no response arrived, like a network error).
   * @default 503 when transient, 401 otherwise
   */
  readonly status?: number | undefined;
  /**
   * The `Retry-After` the service sends, in milliseconds.
   * @default undefined
   */
  readonly retryAfterMs?: number | undefined;
  /**
   * How many requests fail. `Infinity` fails every request until {@link TestCredential.recover}.
   * @default 1, or `Infinity` when `forMs` is given
   */
  readonly times?: number | undefined;
  /**
   * Fail requests that start within this many milliseconds from now, then recover.
   * @default undefined (no time limit)
   */
  readonly forMs?: number | undefined;
  /**
   * The OAuth `error` of the response.
   * @default "temporarily_unavailable" when transient, "invalid_client" otherwise
   */
  readonly error?: string | undefined;
  /**
   * The response's `error_description`.
   * @default a description that names the injection
   */
  readonly errorDescription?: string | undefined;
}

/**
 * One outage of a fault schedule: from `startMs` after the schedule is applied, requests
 * fail for `durationMs`. What `arbitraries(fc).faultSchedule()` generates.
 */
export interface FaultPhase {
  /** When the outage starts, in milliseconds after {@link TestCredential.scheduleFaults}. */
  readonly startMs: number;
  /** How long requests fail. */
  readonly durationMs: number;
  /** Whether the failures are transient. */
  readonly transient: boolean;
  /** HTTP status of the failures. @default 503 when transient, 401 otherwise */
  readonly status?: number | undefined;
  /** `Retry-After` of the failures, in milliseconds. @default undefined */
  readonly retryAfterMs?: number | undefined;
}

/** One token request the engine made, as {@link TestCredential.requests} lists it. */
export interface TestTokenRequest {
  /** When the request was sent (`scheduler.now()`). */
  readonly at: number;
  /** The resolved tenant, lower-cased. */
  readonly tenantId: string;
  /** The scopes, trimmed, de-duplicated and sorted. */
  readonly scopes: readonly string[];
  readonly claims: string | undefined;
  readonly enableCae: boolean;
  /**
   * `"pending"` while in flight, then `"token"`, `"failed"` (an injected failure), or
   * `"cancelled"` (nobody waited any longer, or the credential closed).
   */
  readonly outcome: "pending" | "token" | "failed" | "cancelled";
  /** The token it returned, when it returned one. */
  readonly token: string | undefined;
}

/** The payload of a token minted by {@link createTestCredential}. Times in epoch seconds. */
export interface TestTokenClaims {
  /** The resource: the first scope without `/.default`. */
  readonly aud: string;
  /** `https://sts.windows.net/{tid}/`, as Entra ID v1 tokens have it. */
  readonly iss: string;
  readonly tid: string;
  readonly appid: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** Every scope of the request. */
  readonly scp: readonly string[];
  /** 1 for the first token of this credential, 2 for the next, … */
  readonly n: number;
  /** `["cp1"]` for CAE tokens. */
  readonly xms_cc?: readonly string[];
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

type RequestRecord = {
  -readonly [P in keyof TestTokenRequest]: TestTokenRequest[P];
};

interface QueuedFailure {
  readonly failure: TestFailure;
  remaining: number;
  readonly until: number;
}

/**
 * How many requests {@link createTestCredential} answers at one virtual instant before it
 * declares a retry loop that never lets time move (a test set-up mistake) and fails the
 * request permanently.
 */
export const MAX_REQUESTS_PER_INSTANT = 1_000;

const DEFAULT_TENANT = "00000000-0000-0000-0000-00000000000a";
const DEFAULT_CLIENT = "00000000-0000-0000-0000-00000000000c";

function checkDuration(name: string, value: unknown, allowZero: boolean): number {
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < 0 ||
    (!allowZero && value === 0)
  ) {
    throw new InvalidArgumentError(
      `Expected \`${name}\` to be a ${allowZero ? "non-negative" : "positive"} finite number of milliseconds, got ${typeof value === "number" ? String(value) : typeof value}.`,
    );
  }
  return value;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** `aud` of a scope: `https://storage.azure.com/.default` → `https://storage.azure.com`. */
function audienceOf(scope: string): string {
  if (scope.endsWith("/.default")) return scope.slice(0, -"/.default".length);
  try {
    const url = new URL(scope);
    return url.protocol === "https:" || url.protocol === "http:" ? url.origin : scope;
  } catch {
    return scope;
  }
}

/** Failures are classified as `ClientSecretCredential` classifies the service's errors. */
function classify(error: unknown): FailureClass {
  return isAuthenticationError(error)
    ? { transient: error.transient, retryAfterMs: error.retryAfterMs }
    : { transient: false };
}

function toError(failure: TestFailure): AuthenticationError {
  const status = failure.status ?? (failure.transient ? 503 : 401);
  const error = failure.error ?? (failure.transient ? "temporarily_unavailable" : "invalid_client");
  return new AuthenticationError(
    status,
    {
      error,
      errorDescription:
        failure.errorDescription ??
        `Injected by the test credential: fail({ transient: ${String(failure.transient)} }).`,
    },
    { transient: failure.transient, retryAfterMs: failure.retryAfterMs },
  );
}

/**
 * Decodes the payload of a token minted by {@link createTestCredential}, to assert on its
 * audience, tenant, expiry or sequence number.
 *
 * @throws InvalidArgumentError when `token` is not such a token
 * @example
 * ```ts
 * const { token } = await credential.getToken("https://storage.azure.com/.default");
 * decodeTestToken(token).aud; // "https://storage.azure.com"
 * ```
 */
export function decodeTestToken(token: string): TestTokenClaims {
  const payload = token.split(".")[1];
  try {
    if (payload === undefined) throw new TypeError("no payload");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as unknown;
    if (typeof claims !== "object" || claims === null || !("n" in claims)) {
      throw new TypeError("not a test token");
    }
    return claims as TestTokenClaims;
  } catch (cause) {
    throw new InvalidArgumentError(
      "Expected a token minted by createTestCredential (header.payload.signature, base64url JSON payload).",
      { cause },
    );
  }
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
  let lifetimeMs = checkDuration("lifetimeMs", options.lifetimeMs ?? 3_600_000, false);
  let refreshInMs =
    options.refreshInMs === undefined
      ? undefined
      : checkDuration("refreshInMs", options.refreshInMs, true);
  const latencyMs = checkDuration("latencyMs", options.latencyMs ?? 0, true);
  const tenantId = options.tenantId ?? DEFAULT_TENANT;
  validateTenantId(tenantId, "tenantId");
  const clientId = options.clientId ?? DEFAULT_CLIENT;
  validateClientId(clientId);
  const allowedTenants = validateAllowedTenants(options.additionallyAllowedTenants ?? ["*"]);

  const requests: RequestRecord[] = [];
  const failures: QueuedFailure[] = [];
  let minted = 0;
  let instant = Number.NaN;
  let requestsAtInstant = 0;
  let closed = false;
  const faultTimers = new Subscription();

  const nextFailure = (now: number): TestFailure | undefined => {
    for (;;) {
      const head = failures[0];
      if (head === undefined) return undefined;
      if (head.remaining <= 0 || now >= head.until) {
        failures.shift();
        continue;
      }
      head.remaining -= 1;
      return head.failure;
    }
  };

  const mint = (key: CredentialKey): AcquiredToken => {
    const now = scheduler.now();
    const expiresOnTimestamp = now + lifetimeMs;
    const issuedAt = Math.floor(now / 1000);
    const claims: TestTokenClaims = {
      aud: audienceOf(key.scopes[0] ?? ""),
      iss: `https://sts.windows.net/${key.tenant}/`,
      tid: key.tenant,
      appid: clientId,
      iat: issuedAt,
      nbf: issuedAt,
      exp: Math.floor(expiresOnTimestamp / 1000),
      scp: key.scopes,
      n: ++minted,
      ...(key.enableCae ? { xms_cc: ["cp1"] } : {}),
    };
    return {
      token: `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.`,
      expiresOnTimestamp,
      refreshAfterTimestamp: refreshInMs === undefined ? undefined : now + refreshInMs,
    };
  };

  const acquire = (key: CredentialKey): Observable<AcquiredToken> =>
    defer(() => {
      const record: RequestRecord = {
        at: scheduler.now(),
        tenantId: key.tenant,
        scopes: key.scopes,
        claims: key.claims,
        enableCae: key.enableCae,
        outcome: "pending",
        token: undefined,
      };
      requests.push(record);
      requestsAtInstant = record.at === instant ? requestsAtInstant + 1 : 1;
      instant = record.at;
      if (requestsAtInstant > MAX_REQUESTS_PER_INSTANT) {
        record.outcome = "failed";
        return throwError(
          () =>
            new CredentialUnavailableError(
              `The test credential got over ${MAX_REQUESTS_PER_INSTANT} token requests at virtual time ${record.at} without the clock moving: retries of an injected transient failure are immediate with the default \`random\` and \`latencyMs: 0\`. Give the failure a \`retryAfterMs\`, or the credential a \`latencyMs\` or a \`random\`.`,
            ),
        );
      }
      const failure = nextFailure(record.at);
      const answer = timer(latencyMs, scheduler);
      const response =
        failure === undefined
          ? answer.pipe(map(() => mint(key)))
          : answer.pipe(mergeMap(() => throwError(() => toError(failure))));
      return response.pipe(
        tap({
          next: (token) => {
            record.outcome = "token";
            record.token = token.token;
          },
          error: () => {
            record.outcome = "failed";
          },
          unsubscribe: () => {
            if (record.outcome === "pending") record.outcome = "cancelled";
          },
        }),
      );
    });

  const registry: TokenRegistry<CredentialKey> = createTokenRegistry<CredentialKey>({
    acquire,
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
      faultTimers.unsubscribe();
      await registry.close();
    },
    [Symbol.asyncDispose]() {
      return credential.close();
    },
    fail(failure) {
      if (typeof failure?.transient !== "boolean") {
        throw new InvalidArgumentError(
          "Expected `fail({ transient })` with `transient` true (retried, like a 503) or false (permanent, like invalid_client).",
        );
      }
      const forMs =
        failure.forMs === undefined ? undefined : checkDuration("forMs", failure.forMs, false);
      const times = failure.times ?? (forMs === undefined ? 1 : Number.POSITIVE_INFINITY);
      if (!(times >= 0) || (Number.isFinite(times) && !Number.isInteger(times))) {
        throw new InvalidArgumentError(
          `Expected \`times\` to be a non-negative integer or Infinity, got ${String(times)}.`,
        );
      }
      if (failure.retryAfterMs !== undefined) {
        checkDuration("retryAfterMs", failure.retryAfterMs, true);
      }
      failures.push({
        failure,
        remaining: times,
        until: forMs === undefined ? Number.POSITIVE_INFINITY : scheduler.now() + forMs,
      });
    },
    scheduleFaults(schedule) {
      const timers = new Subscription();
      for (const phase of schedule) {
        const startMs = checkDuration("startMs", phase.startMs, true);
        const durationMs = checkDuration("durationMs", phase.durationMs, false);
        const start = (): void => {
          if (closed) return;
          credential.fail({
            transient: phase.transient,
            status: phase.status,
            retryAfterMs: phase.retryAfterMs,
            forMs: durationMs,
          });
        };
        // An outage at 0 is in force at once, for requests made before the clock moves.
        if (startMs === 0) start();
        else timers.add(scheduler.schedule(start, startMs));
      }
      faultTimers.add(timers);
      return timers;
    },
    recover() {
      failures.length = 0;
    },
    setLifetime(newLifetimeMs, newRefreshInMs) {
      lifetimeMs = checkDuration("lifetimeMs", newLifetimeMs, false);
      refreshInMs =
        newRefreshInMs === undefined
          ? undefined
          : checkDuration("refreshInMs", newRefreshInMs, true);
    },
    get requests(): readonly TestTokenRequest[] {
      return requests.map((record) => ({ ...record }));
    },
    requestCount(filter) {
      return filter === undefined ? requests.length : requests.filter(filter).length;
    },
  };
  return credential;
}
