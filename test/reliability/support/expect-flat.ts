import { expect } from "vitest";
import type { ChurnFigures } from "./key-churn.js";

/** Heap a key may keep once it is gone: the target of DESIGN.md's "memory follows live keys". */
export const MAX_BYTES_KEPT_PER_KEY = 64;

/**
 * Asserts that a churned day kept what its live keys need and nothing per key ever seen: the
 * entries remembered and the timers armed at the end are those of a quarter of the way (not
 * four times as many), and the heap grew by less than {@link MAX_BYTES_KEPT_PER_KEY} per key
 * seen since then.
 *
 * @example
 * ```ts
 * expectFlat(await churnForADay(10_000));
 * ```
 */
export function expectFlat(figures: ChurnFigures): void {
  const seenSinceQuarter = figures.keysSeen - Math.floor(figures.keysSeen / 4);
  expect(figures.unexpectedFailures).toBe(0);
  // Every subscribed key was refreshed while held; nothing was asked twice otherwise.
  expect(figures.requests).toBeGreaterThan(figures.keysSeen + figures.subscribed);
  expect(figures.rememberedAtEnd).toBeLessThan(figures.keysSeen / 10);
  expect(figures.rememberedAtEnd).toBeLessThanOrEqual(2 * figures.rememberedAtQuarter);
  // One refresh timer per live subscribed key, and nothing else.
  expect(figures.timersAtEnd).toBeLessThanOrEqual(figures.liveAtEnd + 2);
  expect(figures.timersAtEnd).toBeLessThanOrEqual(2 * figures.timersAtQuarter);
  expect((figures.heapAtEnd - figures.heapAtQuarter) / seenSinceQuarter).toBeLessThan(
    MAX_BYTES_KEPT_PER_KEY,
  );
  expect(figures.timersAfterClose).toBe(0);
}
