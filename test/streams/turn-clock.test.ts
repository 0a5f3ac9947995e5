/**
 * The cache hit's clock (engine-clock.ts, `turnClock`): the system clock read once per
 * event-loop turn and again every `reads` reads, so a hit costs no system call and a long
 * turn still sees time move.
 */
import { describe, expect, test } from "vitest";
import {
  engineClocks,
  monotonicNow,
  TURN_CLOCK_READS,
  turnClock,
} from "../../src/streams/engine-clock.js";
import { unrefScheduler } from "../../src/streams/index.js";

/** A clock that counts its reads, and the turn ends the test triggers. */
function counted(): { now: () => number; reads: () => number; endTurn: () => void } {
  let time = 1_000;
  let reads = 0;
  const ends: (() => void)[] = [];
  const now = turnClock(
    () => {
      reads += 1;
      time += 1;
      return time;
    },
    (clear) => ends.push(clear),
    4,
  );
  return { now, reads: () => reads, endTurn: () => ends.splice(0).forEach((clear) => clear()) };
}

describe("turnClock", () => {
  test("reads the clock once in a turn, and again in the next", () => {
    const clock = counted();
    expect([clock.now(), clock.now(), clock.now()]).toEqual([1_001, 1_001, 1_001]);
    expect(clock.reads()).toBe(1);
    clock.endTurn();
    expect(clock.now()).toBe(1_002);
    expect(clock.reads()).toBe(2);
  });

  test("a long turn reads the clock again every `reads` reads", () => {
    const clock = counted();
    const seen = Array.from({ length: 9 }, () => clock.now());
    expect(seen).toEqual([1_001, 1_001, 1_001, 1_001, 1_002, 1_002, 1_002, 1_002, 1_003]);
    expect(clock.reads()).toBe(3);
  });

  test("in real time, hits read monotonic time, and a later turn sees it move", async () => {
    const { hitNow } = engineClocks(unrefScheduler);
    const first = hitNow();
    expect(first).toBeLessThanOrEqual(monotonicNow());
    expect(hitNow()).toBe(first);
    await new Promise((resolve) => setImmediate(resolve));
    while (monotonicNow() <= first) {
      // The clock's resolution is a microsecond or less: a few iterations at most.
    }
    expect(hitNow()).toBeGreaterThan(first);
    expect(TURN_CLOCK_READS).toBe(256);
  });
});
