export { MAX_TIMER_DELAY_MS, clampDelay } from "./clamp-delay.js";
export { dropStale } from "./drop-stale.js";
export type { DropStaleOptions } from "./drop-stale.js";
export { createUnrefScheduler, unrefScheduler } from "./unref-scheduler.js";
