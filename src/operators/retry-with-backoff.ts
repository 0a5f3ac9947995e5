import { retry, throwError, timer, type MonoTypeOperatorFunction, type SchedulerLike } from "rxjs";
import { backoffDelay } from "./backoff-delay.js";
import { clampDelay } from "./clamp-delay.js";

/** How a failure should be retried. */
export interface RetryDecision {
  /** Whether trying again later may succeed. */
  readonly transient: boolean;
  /**
   * A server-given delay (`Retry-After`) in milliseconds: the retry waits at least this long,
   * and at least the backoff. 0, negative or `NaN` is no hint.
   */
  readonly retryAfterMs?: number | undefined;
}

/** Options of {@link retryWithBackoff}. */
export interface RetryWithBackoffOptions {
  /** Classifies an error: permanent errors are never retried. */
  readonly classify: (error: unknown) => RetryDecision;
  /** Backoff base: retry `n` (from 0) waits `random() * min(capMs, baseMs * 2 ** n)`. */
  readonly baseMs: number;
  /** Backoff cap. */
  readonly capMs: number;
  /**
   * The least wait between two attempts (never above `baseMs / 2`, so first retries still
   * spread): full jitter may draw a wait near 0, and a loop of immediate retries is a
   * request storm.
   * @default 100
   */
  readonly floorMs?: number | undefined;
  /**
   * The time (on `scheduler`'s clock) no retry may be scheduled at or after, read at each
   * failure; when the next retry would land there, the error goes downstream instead.
   * @default () => Infinity
   */
  readonly deadline?: (() => number) | undefined;
  /** The clock and timers. */
  readonly scheduler: SchedulerLike;
  /**
   * The source of jitter, a number in `[0, 1)`.
   * @default Math.random
   */
  readonly random?: (() => number) | undefined;
  /** Called before each retry is scheduled, for logging. */
  readonly onRetry?: ((error: unknown, delayMs: number, attempt: number) => void) | undefined;
}

/**
 * Retries transient errors with exponential backoff and full jitter (AWS architecture
 * blog, "Exponential Backoff And Jitter") above a floor, waits at least a server-given
 * `retryAfterMs` (a lower bound, never a reason to retry sooner than the backoff), never
 * schedules a retry at or past `deadline()`, and starts the backoff over after a success.
 *
 * @example
 * ```ts
 * fetchToken$.pipe(
 *   retryWithBackoff({
 *     classify: (err) => ({ transient: isAuthenticationError(err) && err.transient }),
 *     baseMs: 500, capMs: 15_000, deadline: () => usableUntil, scheduler,
 *   }),
 * );
 * ```
 */
export function retryWithBackoff<T>(options: RetryWithBackoffOptions): MonoTypeOperatorFunction<T> {
  const { classify, baseMs, capMs, floorMs, scheduler, onRetry } = options;
  const deadline = options.deadline ?? (() => Number.POSITIVE_INFINITY);
  const random = options.random ?? Math.random;
  return retry({
    resetOnSuccess: true,
    delay: (error: unknown, retryCount: number) => {
      const decision = classify(error);
      if (!decision.transient) return throwError(() => error);
      const attempt = retryCount - 1;
      const delay = backoffDelay({
        attempt,
        baseMs,
        capMs,
        floorMs,
        retryAfterMs: decision.retryAfterMs,
        random,
      });
      if (scheduler.now() + delay >= deadline()) return throwError(() => error);
      onRetry?.(error, delay, attempt);
      return timer(clampDelay(delay), scheduler);
    },
  });
}
