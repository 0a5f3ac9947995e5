import { defer, EMPTY, repeat, tap, type MonoTypeOperatorFunction, type SchedulerLike } from "rxjs";
import { timerAt } from "./timer-at.js";

/** Options of {@link refreshBeforeExpiry}. */
export interface RefreshBeforeExpiryOptions<T> {
  /** When to fetch the next value after `value`, on `scheduler`'s clock. */
  readonly refreshAt: (value: T) => number;
  /** The clock and timers. */
  readonly scheduler: SchedulerLike;
  /**
   * The least time from a value to the next fetch, whatever `refreshAt` says. A refresh time
   * already past (a token shorter than the offset in `refreshAt`, or a source that hands
   * back its cached token near expiry) would otherwise re-fetch in a tight loop. `0` turns
   * the floor off.
   * @default 1_000
   */
  readonly minIntervalMs?: number | undefined;
  /**
   * While fetches keep bringing back the same value (see `isSame`), the floor doubles each
   * time, up to this.
   * @default 30_000
   */
  readonly maxIntervalMs?: number | undefined;
  /**
   * Whether a fetch brought back the value of the fetch before (a cached token).
   * @default Object.is
   */
  readonly isSame?: ((previous: T, next: T) => boolean) | undefined;
}

/**
 * Turns a source that fetches one value and completes (one token request) into an endless
 * stream: after each value it re-subscribes to the source at `refreshAt(value)`, but never
 * sooner than `minIntervalMs` after the value, and backing off (doubling that floor up to
 * `maxIntervalMs`) while the source keeps answering with the same value. So a refresh time
 * already past costs one fetch a second at most, not a loop (issue #18: 896 fetches in one
 * second with a caching source). If a fetch completes without a value the stream completes;
 * errors pass through (put a retry operator upstream of this one).
 *
 * @example
 * ```ts
 * defer(() => credential.getToken(scope)).pipe(
 *   refreshBeforeExpiry({
 *     refreshAt: (t) => t.expiresOnTimestamp - 300_000,
 *     isSame: (a, b) => a.token === b.token,
 *     scheduler,
 *   }),
 * );
 * ```
 */
export function refreshBeforeExpiry<T>(
  options: RefreshBeforeExpiryOptions<T>,
): MonoTypeOperatorFunction<T> {
  const { refreshAt, scheduler } = options;
  const minIntervalMs = options.minIntervalMs ?? 1_000;
  const maxIntervalMs = Math.max(minIntervalMs, options.maxIntervalMs ?? 30_000);
  const isSame = options.isSame ?? Object.is;
  return (source) =>
    defer(() => {
      // Per-subscription state, as rxjs's own `share` keeps it: the last value of this round,
      // the value of the round before, and the current floor.
      let last: { value: T } | undefined;
      let before: { value: T } | undefined;
      let interval = minIntervalMs;
      return source.pipe(
        tap((value) => {
          last = { value };
        }),
        repeat({
          delay: () => {
            const current = last;
            last = undefined;
            if (current === undefined) return EMPTY;
            interval =
              before !== undefined && isSame(before.value, current.value)
                ? Math.min(interval * 2, maxIntervalMs)
                : minIntervalMs;
            before = current;
            return timerAt(
              Math.max(refreshAt(current.value), scheduler.now() + interval),
              scheduler,
            );
          },
        }),
      );
    });
}
