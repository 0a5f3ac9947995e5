/** The registry's dense table of cache hits (hit-table.ts). */
import type { AccessToken } from "@azure/core-auth";
import { describe, expect, test } from "vitest";
import { HitTable, NO_SLOT } from "../../src/streams/hit-table.js";

const token = (name: string): Promise<AccessToken> =>
  Promise.resolve({ token: name, expiresOnTimestamp: 10_000 });

describe("HitTable", () => {
  test("a hit until its deadline, none after, none once cleared", () => {
    const table = new HitTable();
    const slot = table.allocate();
    expect(table.hit(slot, 0)).toBeUndefined();
    const promise = token("a");
    table.set(slot, promise, 5_000);
    expect(table.hit(slot, 4_999)).toBe(promise);
    expect(table.hit(slot, 5_000)).toBeUndefined();
    table.clear(slot);
    expect(table.hit(slot, 0)).toBeUndefined();
  });

  test("a slot is given again only once released, and then holds no hit", () => {
    const table = new HitTable();
    const a = table.allocate();
    const b = table.allocate();
    expect(b).not.toBe(a);
    table.set(a, token("a"), 5_000);
    table.release(a);
    const c = table.allocate();
    expect(c).toBe(a);
    expect(table.hit(c, 0)).toBeUndefined();
  });

  test("grows past its first capacity and keeps every hit; clearAll drops them all", () => {
    const table = new HitTable();
    const promises = Array.from({ length: 1_000 }, (_, i) => token(`t${i}`));
    const slots = promises.map((promise, i) => {
      const slot = table.allocate();
      table.set(slot, promise, 1_000 + i);
      return slot;
    });
    expect(new Set(slots).size).toBe(1_000);
    slots.forEach((slot, i) => expect(table.hit(slot, 999 + i)).toBe(promises[i]));
    table.clearAll();
    expect(slots.filter((slot) => table.hit(slot, 0) !== undefined)).toEqual([]);
  });

  test("NO_SLOT (a claims key) never holds a hit", () => {
    const table = new HitTable();
    table.set(NO_SLOT, token("claims"), 5_000);
    expect(table.hit(NO_SLOT, 0)).toBeUndefined();
  });
});
