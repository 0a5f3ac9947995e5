/**
 * The smallest wait between two attempts (unless half the base is smaller): full jitter can
 * draw a wait near 0, and a loop of 0 ms retries is the request storm servers throttle
 * clients for.
 */
export const DEFAULT_RETRY_FLOOR_MS = 100;

/** Inputs of {@link backoffDelay}; times in milliseconds. */
export interface BackoffDelayOptions {
  /** Retry number, 0 for the first retry. */
  readonly attempt: number;
  /** Backoff base: retry `n` draws from `[0, min(capMs, baseMs * 2 ** n))`. */
  readonly baseMs: number;
  /** Backoff cap. */
  readonly capMs: number;
  /**
   * The least wait, {@link DEFAULT_RETRY_FLOOR_MS} by default, but never above half of
   * `baseMs` (nor `capMs`), so first retries still spread over at least `[baseMs / 2, baseMs)`.
   */
  readonly floorMs?: number | undefined;
  /**
   * A server's `Retry-After`, if any. Only a positive finite delay is a hint: 0, a negative
   * value or `NaN` (a past HTTP-date, a clock apart from the server's) is no hint at all.
   */
  readonly retryAfterMs?: number | undefined;
  /** A number in `[0, 1)`, like `Math.random`. */
  readonly random: () => number;
}

/**
 * The wait before retry `attempt`: exponential backoff with full jitter (AWS architecture
 * blog, "Exponential Backoff And Jitter"), `random() * min(capMs, baseMs * 2 ** attempt)`,
 * no less than the floor, and no less than the server's `Retry-After`. A server delay is a
 * lower bound on the next attempt, never a reason to skip the backoff: `Retry-After: 0`
 * answered to every request must not turn the retries into a loop (issue #18).
 *
 * @example
 * ```ts
 * backoffDelay({ attempt: 3, baseMs: 500, capMs: 15_000, random: () => 0.5 }); // 2_000
 * backoffDelay({ attempt: 0, baseMs: 500, capMs: 15_000, retryAfterMs: 10_000, random: Math.random }); // 10_000
 * backoffDelay({ attempt: 0, baseMs: 500, capMs: 15_000, retryAfterMs: 0, random: () => 0 }); // 100
 * ```
 */
export function backoffDelay(options: BackoffDelayOptions): number {
  const { attempt, baseMs, capMs, retryAfterMs } = options;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 52));
  const jittered = ceiling * clampUnit(options.random());
  const floor = Math.min(options.floorMs ?? DEFAULT_RETRY_FLOOR_MS, baseMs / 2, capMs);
  const hint =
    retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0
      ? retryAfterMs
      : 0;
  return Math.max(jittered, floor, hint);
}

/**
 * `value` clamped into `[0, 1)`, `NaN` to 0: what a `random` source may return, made safe.
 *
 * @example
 * ```ts
 * clampUnit(1); // 1 - Number.EPSILON
 * ```
 */
export function clampUnit(value: number): number {
  if (!(value > 0)) return 0;
  return value >= 1 ? 1 - Number.EPSILON : value;
}
