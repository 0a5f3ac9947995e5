import { filter, type MonoTypeOperatorFunction, type SchedulerLike } from "rxjs";

/** Options of {@link dropStale}. */
export interface DropStaleOptions<T> {
  /**
   * The time (on `scheduler`'s clock) from which `value` must no longer be delivered, for a
   * token its expiry minus the forced window.
   */
  readonly deadline: (value: T) => number;
  /** The clock. */
  readonly scheduler: SchedulerLike;
}

/**
 * Drops every value whose deadline has passed at the moment it would be delivered
 * (`scheduler.now() >= deadline(value)`), so a replayed or late token that is inside its
 * forced window never reaches a subscriber.
 *
 * @example
 * ```ts
 * tokens$.pipe(dropStale({ deadline: (t) => t.expiresOnTimestamp - 30_000, scheduler }));
 * ```
 */
export function dropStale<T>(options: DropStaleOptions<T>): MonoTypeOperatorFunction<T> {
  const { deadline, scheduler } = options;
  return filter((value) => scheduler.now() < deadline(value));
}
