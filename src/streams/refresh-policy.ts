import { InvalidArgumentError } from "../errors/index.js";
import { backoffDelay, clampUnit, DEFAULT_RETRY_FLOOR_MS } from "../operators/index.js";

/**
 * The knobs of the refresh schedule, the forced window and the retry delays. All times are
 * milliseconds. {@link DEFAULT_REFRESH_POLICY} holds the defaults and why they were chosen.
 */
export interface RefreshPolicyOptions {
  /**
   * Tokens that live at least this long refresh at half-life. Entra ID issues 60 to 90
   * minute tokens by default (up to 24 h with CAE): half-life gives half an hour or more of
   * slack to ride out an outage; it is also the rule Entra ID applies when it sends
   * `refresh_in` for long-lived tokens.
   * @default 7_200_000 (2 hours)
   */
  readonly halfLifeThresholdMs: number;
  /**
   * Shorter tokens refresh this long before they expire, but never earlier than half-life
   * (a 4-minute token refreshes at 2 minutes, not at once). 5 minutes is the window in which
   * MSAL and `@azure/identity` already consider a token expired, so refreshing then keeps
   * us in step with every other Azure client.
   * @default 300_000 (5 minutes)
   */
  readonly refreshBeforeExpiryMs: number;
  /**
   * The random jitter subtracted from the refresh time is at most this fraction of the time
   * left until the refresh, so a fleet that got its tokens at the same instant does not
   * refresh in lock-step.
   * @default 0.1
   */
  readonly jitterRatio: number;
  /**
   * Upper bound of the jitter, so a day-long token does not refresh hours early.
   * @default 300_000 (5 minutes)
   */
  readonly maxJitterMs: number;
  /**
   * A token with less than this left is never handed out: it would expire on the wire or be
   * rejected by a resource whose clock runs ahead. 30 s covers ordinary clock skew and
   * request latency.
   * @default 30_000
   */
  readonly forcedWindowMs: number;
  /**
   * For very short lifetimes the forced window shrinks to this fraction of the lifetime, so
   * a 40-second token is still usable for 30 seconds instead of never.
   * @default 0.25
   */
  readonly forcedWindowMaxFraction: number;
  /**
   * Base of the exponential backoff between transient failures: attempt `n` waits a uniform
   * random time in `[0, min(retryCapMs, retryBaseMs * 2 ** n))` ("full jitter").
   * @default 500
   */
  readonly retryBaseMs: number;
  /**
   * Cap of the backoff. Small enough that a fresh token arrives within seconds of the end of
   * an outage (MSAL's own throttle waits 60 s; this library recovers as soon as the service
   * does).
   * @default 15_000
   */
  readonly retryCapMs: number;
  /**
   * The least wait between two attempts (never above `retryBaseMs / 2`), whatever the jitter
   * draws and whatever `Retry-After` says: a `Retry-After: 0` answered to every request
   * would otherwise turn the retries into a request storm (issue #18).
   * @default 100
   */
  readonly retryFloorMs: number;
  /**
   * When no usable token exists, transient failures are retried for at most this long
   * before waiting callers and subscribers get the error.
   * @default 20_000
   */
  readonly retryWithoutTokenMs: number;
  /**
   * After a permanent failure while a usable token is still served, the next attempt waits
   * this long (or until the token leaves its usable life, whichever is first), so a
   * refused request is not hammered.
   * @default 60_000
   */
  readonly permanentFailureBackoffMs: number;
}

/**
 * The default refresh policy.
 *
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify, policy: { ...DEFAULT_REFRESH_POLICY, forcedWindowMs: 60_000 } });
 * ```
 */
export const DEFAULT_REFRESH_POLICY: Readonly<RefreshPolicyOptions> = Object.freeze({
  halfLifeThresholdMs: 7_200_000,
  refreshBeforeExpiryMs: 300_000,
  jitterRatio: 0.1,
  maxJitterMs: 300_000,
  forcedWindowMs: 30_000,
  forcedWindowMaxFraction: 0.25,
  retryBaseMs: 500,
  retryCapMs: 15_000,
  retryFloorMs: DEFAULT_RETRY_FLOOR_MS,
  retryWithoutTokenMs: 20_000,
  permanentFailureBackoffMs: 60_000,
});

const ratioOptions = new Set<keyof RefreshPolicyOptions>([
  "jitterRatio",
  "forcedWindowMaxFraction",
]);

/**
 * Merges `options` over {@link DEFAULT_REFRESH_POLICY} and validates every value.
 *
 * @throws InvalidArgumentError naming the option that is negative, `NaN`, infinite, not a
 * number, or (for the ratios) above 1.
 * @example
 * ```ts
 * const policy = resolveRefreshPolicy({ forcedWindowMs: 60_000 });
 * ```
 */
export function resolveRefreshPolicy(
  options: Partial<RefreshPolicyOptions> = {},
): Readonly<RefreshPolicyOptions> {
  const merged: { -readonly [P in keyof RefreshPolicyOptions]: number } = {
    ...DEFAULT_REFRESH_POLICY,
  };
  for (const name of Object.keys(DEFAULT_REFRESH_POLICY) as (keyof RefreshPolicyOptions)[]) {
    const value: unknown = options[name];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new InvalidArgumentError(
        `Expected refresh option \`${name}\` to be a finite, non-negative number of ${ratioOptions.has(name) ? "parts" : "milliseconds"}, got ${typeof value === "number" ? String(value) : typeof value}.`,
      );
    }
    if (ratioOptions.has(name) && value > 1) {
      throw new InvalidArgumentError(
        `Expected refresh option \`${name}\` to be a ratio between 0 and 1, got ${value}.`,
      );
    }
    merged[name] = value;
  }
  return Object.freeze(merged);
}

/**
 * The forced window of a token received at `receivedAt`: `forcedWindowMs`, or a fraction
 * of the lifetime for very short tokens.
 *
 * @example
 * ```ts
 * forcedWindow(DEFAULT_REFRESH_POLICY, 0, 3_600_000); // 30_000
 * forcedWindow(DEFAULT_REFRESH_POLICY, 0, 40_000); // 10_000
 * ```
 */
export function forcedWindow(
  policy: Readonly<RefreshPolicyOptions>,
  receivedAt: number,
  expiresOnTimestamp: number,
): number {
  const lifetime = Math.max(0, expiresOnTimestamp - receivedAt);
  return Math.min(policy.forcedWindowMs, lifetime * policy.forcedWindowMaxFraction);
}

/**
 * The refresh time before jitter: the server's `refreshAfterTimestamp` when it lies between
 * now and the end of the usable life; otherwise half-life for tokens of
 * `halfLifeThresholdMs` or more, and `refreshBeforeExpiryMs` before expiry (but not before
 * half-life) for shorter ones. Never later than the end of the usable life.
 *
 * @example
 * ```ts
 * baseRefreshTime(DEFAULT_REFRESH_POLICY, 0, 3_600_000); // 3_300_000 (55 min)
 * baseRefreshTime(DEFAULT_REFRESH_POLICY, 0, 240_000); // 120_000 (half-life)
 * ```
 */
export function baseRefreshTime(
  policy: Readonly<RefreshPolicyOptions>,
  receivedAt: number,
  expiresOnTimestamp: number,
  refreshAfterTimestamp?: number,
): number {
  const usableUntil = expiresOnTimestamp - forcedWindow(policy, receivedAt, expiresOnTimestamp);
  if (usableUntil <= receivedAt) return receivedAt;
  if (
    refreshAfterTimestamp !== undefined &&
    Number.isFinite(refreshAfterTimestamp) &&
    refreshAfterTimestamp > receivedAt
  ) {
    return Math.min(refreshAfterTimestamp, usableUntil);
  }
  const lifetime = expiresOnTimestamp - receivedAt;
  const halfLife = receivedAt + lifetime / 2;
  const base =
    lifetime >= policy.halfLifeThresholdMs
      ? halfLife
      : Math.max(expiresOnTimestamp - policy.refreshBeforeExpiryMs, halfLife);
  return Math.min(base, usableUntil);
}

/**
 * The largest jitter subtracted from a refresh time `base`:
 * `min(jitterRatio * (base - receivedAt), maxJitterMs)`.
 *
 * @example
 * ```ts
 * maxJitter(DEFAULT_REFRESH_POLICY, 0, 1_800_000); // 180_000
 * ```
 */
export function maxJitter(
  policy: Readonly<RefreshPolicyOptions>,
  receivedAt: number,
  base: number,
): number {
  return Math.min(policy.jitterRatio * Math.max(0, base - receivedAt), policy.maxJitterMs);
}

/**
 * When to refresh a token received at `receivedAt`: {@link baseRefreshTime} minus a random
 * jitter in `[0, maxJitter)`. `random` returns a number in `[0, 1)` like `Math.random`.
 *
 * @example
 * ```ts
 * refreshTime(DEFAULT_REFRESH_POLICY, now, token.expiresOnTimestamp, token.refreshAfterTimestamp, Math.random);
 * ```
 */
export function refreshTime(
  policy: Readonly<RefreshPolicyOptions>,
  receivedAt: number,
  expiresOnTimestamp: number,
  refreshAfterTimestamp: number | undefined,
  random: () => number,
): number {
  const base = baseRefreshTime(policy, receivedAt, expiresOnTimestamp, refreshAfterTimestamp);
  return base - maxJitter(policy, receivedAt, base) * clampUnit(random());
}

/**
 * The delay before retry number `attempt` (0 for the first retry): exponential backoff with
 * full jitter, `random() * min(retryCapMs, retryBaseMs * 2 ** attempt)`, but at least
 * `retryFloorMs` (at most half of `retryBaseMs`) and at least the server's `retryAfterMs`. A server
 * delay is a lower bound, never a reason to retry sooner; 0 or a negative one is no hint.
 *
 * @example
 * ```ts
 * retryDelay(DEFAULT_REFRESH_POLICY, 3, undefined, Math.random); // in [100, 4_000)
 * retryDelay(DEFAULT_REFRESH_POLICY, 0, 10_000, Math.random); // 10_000
 * retryDelay(DEFAULT_REFRESH_POLICY, 0, 0, () => 0); // 100, the floor
 * ```
 */
export function retryDelay(
  policy: Readonly<RefreshPolicyOptions>,
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number,
): number {
  return backoffDelay({
    attempt,
    baseMs: policy.retryBaseMs,
    capMs: policy.retryCapMs,
    floorMs: policy.retryFloorMs,
    retryAfterMs,
    random,
  });
}
