/**
 * The largest delay Node and browsers honour: a longer `setTimeout` fires at once
 * (the delay overflows a signed 32-bit integer). ky calls it `maxSafeTimeout`.
 */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * Clamps a timer delay into `[0, MAX_TIMER_DELAY_MS]`; `NaN` becomes 0.
 *
 * @example
 * ```ts
 * timer(clampDelay(expiresAt - scheduler.now()), scheduler);
 * ```
 */
export function clampDelay(delayMs: number): number {
  if (!(delayMs > 0)) return 0;
  return delayMs > MAX_TIMER_DELAY_MS ? MAX_TIMER_DELAY_MS : delayMs;
}
