/**
 * Smoke test of the bench harness's own logic (statistics, the table, the counting virtual
 * scheduler). No timing is asserted: the bench measures time, its tests do not.
 */
import type { SchedulerAction } from "rxjs";
import { describe, expect, test } from "vitest";
import { CountingVirtualTimeScheduler } from "../../bench/measures/refresh-under-load.js";
import { measureIds } from "../../bench/measures/ids.js";
import { measures } from "../../bench/measures/index.js";
import type { MetricRow } from "../../bench/protocol.js";
import { assembleResults, renderTable } from "../../bench/report.js";
import { boundedFill, callsForRound, formatNumber, median } from "../../bench/stats.js";

describe("bench statistics", () => {
  test("median of odd and even counts, and of nothing", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  test("rounds are sized to the per-call cost within bounds", () => {
    expect(callsForRound(0.2, 20, 100, 1_000_000)).toBe(100_000);
    expect(callsForRound(1_000, 20, 100, 1_000_000)).toBe(100);
    expect(callsForRound(0, 20, 100, 1_000_000)).toBe(1_000_000);
  });

  test("bounded fill runs every task with at most `concurrency` in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    const finished = await boundedFill(50, 4, Number.POSITIVE_INFINITY, async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await Promise.resolve();
      inFlight--;
    });
    expect(finished).toBe(50);
    expect(peak).toBe(4);
  });

  test("numbers are shown with three significant digits", () => {
    expect(formatNumber(0.123456)).toBe("0.123");
    expect(formatNumber(12_345.6)).toBe("12,346");
    expect(formatNumber(null)).toBe("—");
  });
});

describe("bench table", () => {
  const row: MetricRow = {
    measure: "cache-hit",
    metric: "cache-hit getToken (µs/call)",
    ours: 0.2,
    peer: 40,
    peerName: "@azure/identity 4.13.1",
    ratio: 200,
    ratioMeaning: "x faster",
    target: ">= 100x faster, <= 0.5 µs",
    met: true,
    note: "median of 9 rounds",
  };

  test("every row shows metric, ours, peer, ratio, target and met, with its note", () => {
    const results = assembleResults(
      "quick",
      [{ id: "cache-hit", rows: [row], details: {}, elapsedMs: 1 }],
      [{ id: "stampede", error: "Error: boom\n    at stack" }],
    );
    const table = renderTable(results);
    expect(table).toMatch(/metric\s+ours\s+peer\s+ratio\s+target\s+met\?/);
    expect(table).toMatch(
      /\[1\] cache-hit getToken \(µs\/call\)\s+0\.2\s+40\s+200 \(x faster\)\s+>= 100x faster, <= 0\.5 µs\s+yes/,
    );
    expect(table).toContain("peer = @azure/identity 4.13.1; median of 9 rounds");
    expect(table).toContain("FAILED stampede: Error: boom");
    expect(table).not.toContain("at stack");
    expect(results).toMatchObject({ mode: "quick", node: process.version, rows: [row] });
  });
});

describe("bench measures", () => {
  test("every measure id has exactly one measure, in order", () => {
    expect(measures.map((measure) => measure.id)).toEqual(measureIds);
  });
});

describe("counting virtual time scheduler", () => {
  test("counts each run of an action, rescheduled runs included, and runs nothing early", () => {
    const scheduler = new CountingVirtualTimeScheduler();
    const seen: number[] = [];
    scheduler.schedule<number>(
      function (this: SchedulerAction<number>, n = 0) {
        seen.push(n);
        if (n < 2) this.schedule(n + 1, 10);
      },
      10,
      0,
    );
    scheduler.advanceTo(15);
    expect(seen).toEqual([0]);
    expect(scheduler.now()).toBe(15);
    scheduler.advanceTo(100);
    expect(seen).toEqual([0, 1, 2]);
    expect(scheduler.firings).toBe(3);
    expect(scheduler.now()).toBe(100);
  });
});
