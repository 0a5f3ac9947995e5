import type { SchedulerLike } from "rxjs";
import { AsyncAction } from "rxjs/internal/scheduler/AsyncAction";
import { AsyncScheduler } from "rxjs/internal/scheduler/AsyncScheduler";
import type { TimerHandle } from "rxjs/internal/scheduler/timerHandle";
import { clampDelay } from "./clamp-delay.js";

/**
 * An `AsyncAction` whose Node timer does not keep the process alive.
 *
 * rxjs 7.8's `AsyncAction` gets its timer from `intervalProvider.setInterval` in
 * `requestAsyncId` and recycles it in `recycleAsyncId`; overriding only `requestAsyncId`
 * keeps all of that (including `TestScheduler.run`, which swaps the provider's delegate and
 * hands back plain numbers, which we leave alone). rxjs 7.8 has no public option to unref
 * its timers, hence the subclass.
 */
class UnrefAsyncAction<T> extends AsyncAction<T> {
  protected override requestAsyncId(
    scheduler: AsyncScheduler,
    id?: TimerHandle,
    delay = 0,
  ): TimerHandle {
    const handle = super.requestAsyncId(scheduler, id, clampDelay(delay));
    if (typeof handle === "object" && typeof handle.unref === "function") handle.unref();
    return handle;
  }
}

/**
 * Creates an rxjs `asyncScheduler` twin whose timers are `unref()`ed, so that a pending
 * refresh timer never keeps a Node process alive: a script that calls `getToken` once exits
 * as soon as its own work is done. Delays are clamped to 2,147,483,647 ms.
 *
 * @example
 * ```ts
 * const scheduler = createUnrefScheduler();
 * timer(60_000, scheduler).subscribe(refresh); // does not hold the process open
 * ```
 */
export function createUnrefScheduler(): SchedulerLike {
  return new AsyncScheduler(UnrefAsyncAction);
}

/**
 * The shared instance of {@link createUnrefScheduler}: the engine's default scheduler.
 *
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify, scheduler: unrefScheduler });
 * ```
 */
export const unrefScheduler: SchedulerLike = createUnrefScheduler();
