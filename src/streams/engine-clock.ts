/**
 * The clock the registry keeps its deadlines on (expiry, refresh, the forced window, retry
 * deadlines). In real time it is monotonic: `Date.now()` stepped back (an NTP step, a VM
 * resumed from a snapshot) must not make an expired token look usable (issue #18). It also
 * follows the wall clock forward, since a forward jump (a suspended machine that resumed:
 * the monotonic clock did not count the suspension) means real time passed and tokens must
 * be refreshed at once. Token times users see stay on the wall clock (epoch milliseconds).
 * With a virtual-time scheduler, its `now()` is the clock and nothing is converted.
 */
import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from "rxjs";
// rxjs's own clock of its async schedulers; TestScheduler.run() sets its delegate (virtual time).
import { dateTimestampProvider } from "rxjs/internal/scheduler/dateTimestampProvider";
import { unrefScheduler } from "../operators/index.js";

const perf = performance;
const origin = perf.timeOrigin;
/** How far ahead of the monotonic clock the wall clock has jumped so far (never decreases). */
let forward = 0;

/**
 * Milliseconds on an epoch-like scale (it starts at the wall time of process start) that
 * never go back and move with every forward jump of `Date.now()`.
 *
 * @example
 * ```ts
 * const deadline = monotonicNow() + 30_000; // still 30 s away after Date.now() steps back
 * ```
 */
export function monotonicNow(): number {
  const now = origin + perf.now() + forward;
  const wall = Date.now();
  if (wall <= now) return now;
  forward += wall - now;
  return wall;
}

/**
 * How many reads of a {@link turnClock} one event-loop turn serves from its first: a turn that
 * runs long (a synchronous loop of cache hits, a long chain of awaited ones) still sees
 * time move within this many hits.
 */
export const TURN_CLOCK_READS = 256;

/**
 * A clock read once per event-loop turn (and again every `reads` reads), as libuv keeps the
 * loop's time for its timers (`uv_now`): `read()` is a system call here (about 50 ns for
 * `performance.now()`, as much again for `Date.now()`), which would be most of a cache hit's
 * cost. `onTurnEnd(clear)` must call `clear` once the current turn is over (`setImmediate`).
 * A value can lag real time by the length of a turn, so it serves only decisions a lag of
 * milliseconds cannot make wrong (a token due for refresh a turn later is still usable for
 * minutes); every deadline is still set and checked on `read()` elsewhere.
 *
 * @example
 * ```ts
 * const now = turnClock(monotonicNow, (clear) => setImmediate(clear).unref());
 * now() === now(); // true within one turn
 * ```
 */
export function turnClock(
  read: () => number,
  onTurnEnd: (clear: () => void) => void,
  reads: number = TURN_CLOCK_READS,
): () => number {
  let value = 0;
  let left = 0;
  let armed = false;
  const clear = (): void => {
    armed = false;
    left = 0;
  };
  return () => {
    if (left > 0) {
      left -= 1;
      return value;
    }
    value = read();
    left = reads - 1;
    if (!armed) {
      armed = true;
      onTurnEnd(clear);
    }
    return value;
  };
}

/** {@link monotonicNow} read once per event-loop turn ({@link turnClock}). */
const monotonicTurnNow = turnClock(monotonicNow, (clear) => {
  setImmediate(clear).unref();
});

/** A scheduler whose `now()` is another clock and whose timers are `base`'s (relative delays). */
class ClockScheduler implements SchedulerLike {
  constructor(
    private readonly base: SchedulerLike,
    readonly now: () => number,
  ) {}

  schedule<T>(
    work: (this: SchedulerAction<T>, state?: T) => void,
    delay?: number,
    state?: T,
  ): Subscription {
    return this.base.schedule(work, delay, state);
  }
}

/** The registry's two clocks. */
export interface EngineClocks {
  /** Timers of the registry's scheduler; `now()` is the deadline clock. */
  readonly scheduler: SchedulerLike;
  /** The clock token timestamps are on (`expiresOnTimestamp`, shared-cache entries). */
  readonly wallNow: () => number;
  /** `scheduler.now()` as a plain function. */
  readonly now: () => number;
  /**
   * The clock of the cache-hit fast path: in real time {@link monotonicNow} read once per
   * event-loop turn ({@link turnClock}); with virtual time, `scheduler.now()`.
   */
  readonly hitNow: () => number;
}

/**
 * The clocks of a registry on `scheduler`: for real time (`asyncScheduler`, `unrefScheduler`
 * outside `TestScheduler.run()`) deadlines on {@link monotonicNow} and token times on the
 * wall clock; for any other scheduler (virtual time), its `now()` for both.
 *
 * @example
 * ```ts
 * const { scheduler, wallNow } = engineClocks(unrefScheduler);
 * ```
 */
export function engineClocks(scheduler: SchedulerLike): EngineClocks {
  // Inside TestScheduler.run() the async schedulers run on virtual time: their now() is it.
  const realTime =
    (scheduler === unrefScheduler || scheduler === asyncScheduler) &&
    dateTimestampProvider.delegate === undefined;
  if (!realTime) {
    const now = (): number => scheduler.now();
    return { scheduler, wallNow: now, now, hitNow: now };
  }
  return {
    scheduler: new ClockScheduler(scheduler, monotonicNow),
    wallNow: () => scheduler.now(),
    now: monotonicNow,
    hitNow: monotonicTurnNow,
  };
}
