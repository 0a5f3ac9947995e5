/** The registry's dense table of cache hits and the memo it keeps told (hit-table.ts). */
import type { AccessToken } from "@azure/core-auth";
import { fc } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { HitTable, NO_SLOT } from "../../src/streams/hit-table.js";
import { numRuns, runsLabel } from "../support/fast-check.js";

const token = (name: string): Promise<AccessToken> =>
  Promise.resolve({ token: name, expiresOnTimestamp: 10_000 });

/** A table whose `onHit` keeps a memo, as the credential does, on a clock the test sets. */
function memoised(): {
  table: HitTable<string>;
  memo: Map<string, Promise<AccessToken>>;
  told: string[];
  clock: { now: number };
} {
  const memo = new Map<string, Promise<AccessToken>>();
  const told: string[] = [];
  const clock = { now: 0 };
  const table = new HitTable<string>(
    (key, promise) => {
      told.push(`${key}:${promise === undefined ? "gone" : "hit"}`);
      if (promise === undefined) memo.delete(key);
      else memo.set(key, promise);
    },
    () => clock.now,
  );
  return { table, memo, told, clock };
}

describe("HitTable", () => {
  test("a hit until its deadline, none after, none once cleared", () => {
    const table = new HitTable<string>();
    const slot = table.allocate("a");
    expect(table.hit(slot, 0)).toBeUndefined();
    const promise = token("a");
    table.set(slot, promise, 5_000);
    expect(table.hit(slot, 4_999)).toBe(promise);
    expect(table.hit(slot, 5_000)).toBeUndefined();
    table.clear(slot);
    expect(table.hit(slot, 0)).toBeUndefined();
  });

  test("a slot is given again only once released, and then holds no hit", () => {
    const table = new HitTable<string>();
    const a = table.allocate("a");
    const b = table.allocate("b");
    expect(b).not.toBe(a);
    table.set(a, token("a"), 5_000);
    table.release(a);
    const c = table.allocate("c");
    expect(c).toBe(a);
    expect(table.hit(c, 0)).toBeUndefined();
  });

  test("grows past its first capacity and keeps every hit; clearAll drops them all", () => {
    const { table, memo } = memoised();
    const promises = Array.from({ length: 1_000 }, (_, i) => token(`t${i}`));
    const slots = promises.map((promise, i) => {
      const slot = table.allocate(`k${i}`);
      table.set(slot, promise, 1_000 + i);
      return slot;
    });
    expect(new Set(slots).size).toBe(1_000);
    slots.forEach((slot, i) => expect(table.hit(slot, 999 + i)).toBe(promises[i]));
    expect(memo.size).toBe(1_000);
    table.clearAll();
    expect(slots.filter((slot) => table.hit(slot, 0) !== undefined)).toEqual([]);
    expect(table.current(1_000_000)).toBe(true);
  });

  test("NO_SLOT (a claims key) never holds a hit", () => {
    const { table, memo } = memoised();
    table.set(NO_SLOT, token("claims"), 5_000);
    expect(table.hit(NO_SLOT, 0)).toBeUndefined();
    expect(memo.size).toBe(0);
  });

  test("onHit is told of each hit and of its end: deadline, refresh, clear, release", () => {
    const { table, memo, told } = memoised();
    const a = table.allocate("a");
    const b = table.allocate("b");
    const first = token("a1");
    table.set(a, first, 1_000);
    table.set(b, token("b1"), 2_000);
    expect(memo.get("a")).toBe(first);
    expect(table.current(999)).toBe(true);
    // a's deadline passed: withdrawn, b's kept; the caller is told to look again.
    expect(table.current(1_000)).toBe(false);
    expect([...memo.keys()]).toEqual(["b"]);
    expect(table.current(1_500)).toBe(true);
    // A refresh of b before its deadline: its old deadline withdraws nothing.
    const refreshed = token("b2");
    table.set(b, refreshed, 5_000);
    expect(table.current(2_000)).toBe(false);
    expect(memo.get("b")).toBe(refreshed);
    table.clear(b);
    expect(memo.has("b")).toBe(false);
    table.set(a, token("a2"), 9_000);
    table.release(a);
    expect(memo.size).toBe(0);
    expect(told).toEqual(["a:hit", "b:hit", "a:gone", "b:hit", "b:gone", "a:hit", "a:gone"]);
  });

  test("a hit set already past its deadline is no hit", () => {
    const { table, memo, clock } = memoised();
    clock.now = 10_000;
    table.set(table.allocate("late"), token("late"), 9_000);
    expect(memo.size).toBe(0);
  });

  test(`after current(now), the memo holds exactly the hits of now ${runsLabel}`, () => {
    const operation = fc.oneof(
      fc.record({
        kind: fc.constant("set" as const),
        key: fc.nat(7),
        ttl: fc.integer({ min: -5, max: 200 }),
      }),
      fc.record({ kind: fc.constant("clear" as const), key: fc.nat(7) }),
      fc.record({ kind: fc.constant("release" as const), key: fc.nat(7) }),
      fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 120 }) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
        const { table, memo, clock } = memoised();
        const slots = new Map<string, number>();
        for (const op of operations) {
          if (op.kind === "advance") {
            clock.now += op.ms;
          } else {
            const key = `k${op.key}`;
            let slot = slots.get(key);
            if (op.kind === "set") {
              if (slot === undefined) slots.set(key, (slot = table.allocate(key)));
              table.set(slot, token(`${key}@${clock.now}`), clock.now + op.ttl);
            } else if (slot !== undefined && op.kind === "clear") {
              table.clear(slot);
            } else if (slot !== undefined) {
              table.release(slot);
              slots.delete(key);
            }
          }
          table.current(clock.now);
          for (const [key, slot] of slots) expect(memo.get(key)).toBe(table.hit(slot, clock.now));
          for (const key of memo.keys()) expect(slots.has(key)).toBe(true);
        }
      }),
      { numRuns },
    );
  });
});
