/**
 * The in-memory token source behind {@link createTestCredential}: it answers each token request
 * on the scheduler after `latencyMs`, with a minted token or with a failure injected by `fail`
 * or `scheduleFaults`, and records every request it got. It stands where Entra ID and MSAL stand
 * for `ClientSecretCredential`.
 */
import { Subscription, map, mergeMap, tap, throwError, timer, defer } from "rxjs";
import type { Observable, SchedulerLike } from "rxjs";
import type { CredentialKey } from "../credential/key.js";
import {
  AuthenticationError,
  CredentialUnavailableError,
  InvalidArgumentError,
} from "../errors/index.js";
import type { AcquiredToken } from "../streams/index.js";
import { mintTestToken } from "./test-token.js";

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

/**
 * How many requests {@link createTestCredential} answers at one virtual instant before it
 * declares a retry loop that never lets time move (a test set-up mistake) and fails the
 * request permanently.
 */
export const MAX_REQUESTS_PER_INSTANT = 1_000;

/** How the source is set up. */
export interface FakeTokenSourceOptions {
  readonly scheduler: SchedulerLike;
  readonly clientId: string;
  /** @default 3_600_000 */
  readonly lifetimeMs?: number | undefined;
  /** @default undefined */
  readonly refreshInMs?: number | undefined;
  /** @default 0 */
  readonly latencyMs?: number | undefined;
}

/** The source: the engine's `acquire`, plus the controls a {@link TestCredential} exposes. */
export interface FakeTokenSource {
  /** One token request, answered on the scheduler. */
  readonly acquire: (key: CredentialKey) => Observable<AcquiredToken>;
  readonly fail: (failure: TestFailure) => void;
  readonly scheduleFaults: (schedule: readonly FaultPhase[]) => Subscription;
  readonly recover: () => void;
  readonly setLifetime: (lifetimeMs: number, refreshInMs?: number) => void;
  readonly requests: readonly TestTokenRequest[];
  readonly requestCount: (filter?: (request: TestTokenRequest) => boolean) => number;
  /** Cancels every fault schedule; later phases never start. */
  readonly close: () => void;
}

type RequestRecord = {
  -readonly [P in keyof TestTokenRequest]: TestTokenRequest[P];
};

interface QueuedFailure {
  readonly failure: TestFailure;
  remaining: number;
  readonly until: number;
}

/** A duration option, checked: a finite number of milliseconds, `0` only when `allowZero`. */
export function checkDuration(name: string, value: unknown, allowZero: boolean): number {
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

/** Creates the token source of a test credential; validates its durations. */
export function createFakeTokenSource(options: FakeTokenSourceOptions): FakeTokenSource {
  const { scheduler, clientId } = options;
  let lifetimeMs = checkDuration("lifetimeMs", options.lifetimeMs ?? 3_600_000, false);
  let refreshInMs =
    options.refreshInMs === undefined
      ? undefined
      : checkDuration("refreshInMs", options.refreshInMs, true);
  const latencyMs = checkDuration("latencyMs", options.latencyMs ?? 0, true);

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

  const mint = (key: CredentialKey): AcquiredToken =>
    mintTestToken(key, { clientId, n: ++minted, now: scheduler.now(), lifetimeMs, refreshInMs });

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
              `The test credential got over ${MAX_REQUESTS_PER_INSTANT} token requests at virtual time ${record.at} without the clock moving: retries of an injected transient failure are immediate with \`retryFloorMs: 0\`, the default \`random\` and \`latencyMs: 0\`. Give the failure a \`retryAfterMs\`, or the credential a \`retryFloorMs\`, a \`latencyMs\` or a \`random\`.`,
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

  const source: FakeTokenSource = {
    acquire,
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
          source.fail({
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
    close() {
      closed = true;
      faultTimers.unsubscribe();
    },
  };
  return source;
}
