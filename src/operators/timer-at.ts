import { Observable, type SchedulerLike } from "rxjs";
import { clampDelay } from "./clamp-delay.js";

/**
 * Emits `0` and completes once `scheduler.now()` reaches `at` (at once when `at` has
 * passed). Unlike `timer(date)`, a time further away than the 24.8-day timer maximum is
 * reached by re-arming a clamped timer until the clock gets there, instead of firing early.
 *
 * @example
 * ```ts
 * timerAt(token.expiresOnTimestamp - 300_000, scheduler).subscribe(refresh);
 * ```
 */
export function timerAt(at: number, scheduler: SchedulerLike): Observable<0> {
  return new Observable<0>((subscriber) =>
    scheduler.schedule(
      function wait() {
        const left = at - scheduler.now();
        if (left > 0) {
          this.schedule(undefined, clampDelay(left));
          return;
        }
        subscriber.next(0);
        subscriber.complete();
      },
      clampDelay(at - scheduler.now()),
    ),
  );
}
