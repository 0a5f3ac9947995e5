import { defer, EMPTY, repeat, tap, type MonoTypeOperatorFunction, type SchedulerLike } from "rxjs";
import { timerAt } from "./timer-at.js";

/** Options of {@link refreshBeforeExpiry}. */
export interface RefreshBeforeExpiryOptions<T> {
  /** When to fetch the next value after `value`, on `scheduler`'s clock. */
  readonly refreshAt: (value: T) => number;
  /** The clock and timers. */
  readonly scheduler: SchedulerLike;
}

/**
 * Turns a source that fetches one value and completes (one token request) into an endless
 * stream: after each value it re-subscribes to the source at `refreshAt(value)`. If a fetch
 * completes without a value the stream completes; errors pass through (put a retry operator
 * upstream of this one).
 *
 * @example
 * ```ts
 * defer(() => fetchToken()).pipe(
 *   refreshBeforeExpiry({ refreshAt: (t) => t.expiresOnTimestamp - 300_000, scheduler }),
 * );
 * ```
 */
export function refreshBeforeExpiry<T>(
  options: RefreshBeforeExpiryOptions<T>,
): MonoTypeOperatorFunction<T> {
  const { refreshAt, scheduler } = options;
  return (source) =>
    defer(() => {
      // Per-subscription state, as rxjs's own `share` keeps it: the last value of this round.
      let last: { value: T } | undefined;
      return source.pipe(
        tap((value) => {
          last = { value };
        }),
        repeat({
          delay: () => {
            const previous = last;
            last = undefined;
            return previous === undefined ? EMPTY : timerAt(refreshAt(previous.value), scheduler);
          },
        }),
      );
    });
}
