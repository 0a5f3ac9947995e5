import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { isInvalidArgumentError } from "../../src/errors/index.js";
import {
  DEFAULT_REFRESH_POLICY,
  baseRefreshTime,
  forcedWindow,
  maxJitter,
  refreshTime,
  resolveRefreshPolicy,
  retryDelay,
} from "../../src/streams/index.js";
import { numRuns, runsLabel } from "../support/fast-check.js";

const P = DEFAULT_REFRESH_POLICY;
const MIN = 60_000;

describe("refresh policy rules", () => {
  it("refreshes long tokens at half-life and short ones 5 minutes before expiry", () => {
    expect(baseRefreshTime(P, 0, 24 * 60 * MIN)).toBe(12 * 60 * MIN);
    expect(baseRefreshTime(P, 0, 120 * MIN)).toBe(60 * MIN);
    expect(baseRefreshTime(P, 0, 60 * MIN)).toBe(55 * MIN);
  });

  it("never refreshes a short token before half-life (a 4-minute token at 2 minutes)", () => {
    expect(baseRefreshTime(P, 0, 4 * MIN)).toBe(2 * MIN);
  });

  it("prefers the server's refresh_in, but not past the usable life", () => {
    expect(baseRefreshTime(P, 0, 60 * MIN, 20 * MIN)).toBe(20 * MIN);
    expect(baseRefreshTime(P, 0, 60 * MIN, 70 * MIN)).toBe(60 * MIN - 30_000);
  });

  it("shrinks the forced window for very short lifetimes", () => {
    expect(forcedWindow(P, 0, 60 * MIN)).toBe(30_000);
    expect(forcedWindow(P, 0, 40_000)).toBe(10_000);
  });

  it("subtracts a bounded jitter", () => {
    expect(maxJitter(P, 0, 30 * MIN)).toBe(3 * MIN);
    expect(maxJitter(P, 0, 12 * 60 * MIN)).toBe(5 * MIN);
    expect(refreshTime(P, 0, 60 * MIN, undefined, () => 0.5)).toBe(55 * MIN - 0.5 * 5 * MIN);
  });

  it("backs off exponentially with full jitter up to the cap, and honours Retry-After", () => {
    expect(retryDelay(P, 0, undefined, () => 0.5)).toBe(250);
    expect(retryDelay(P, 3, undefined, () => 0.5)).toBe(2_000);
    expect(retryDelay(P, 40, undefined, () => 0.5)).toBe(7_500);
    expect(retryDelay(P, 40, 120_000, () => 0.5)).toBe(120_000);
  });

  it.each([
    ["forcedWindowMs", -1],
    ["retryBaseMs", Number.NaN],
    ["retryCapMs", Number.POSITIVE_INFINITY],
    ["jitterRatio", 2],
  ] as const)("rejects %s = %s, naming the option", (name, value) => {
    let thrown: unknown;
    try {
      resolveRefreshPolicy({ [name]: value });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toSatisfy(isInvalidArgumentError);
    expect((thrown as Error).message).toContain(name);
  });
});

describe("refresh policy properties", () => {
  test.prop(
    {
      lifetime: fc.integer({ min: 1_000, max: 48 * 60 * MIN }),
      refreshIn: fc.option(fc.integer({ min: 1, max: 48 * 60 * MIN }), { nil: undefined }),
      receivedAt: fc.integer({ min: 0, max: 2 ** 40 }),
      r: fc.double({ min: 0, max: 1, noNaN: true }),
    },
    { numRuns },
  )(
    `refresh time lies in [base - maxJitter, base], after receipt and inside the usable life ${runsLabel}`,
    ({ lifetime, refreshIn, receivedAt, r }) => {
      const expires = receivedAt + lifetime;
      const refreshAfter = refreshIn === undefined ? undefined : receivedAt + refreshIn;
      const base = baseRefreshTime(P, receivedAt, expires, refreshAfter);
      const at = refreshTime(P, receivedAt, expires, refreshAfter, () => r);
      expect(at).toBeLessThanOrEqual(base);
      expect(at).toBeGreaterThanOrEqual(base - maxJitter(P, receivedAt, base));
      expect(at).toBeGreaterThanOrEqual(receivedAt);
      expect(base).toBeLessThanOrEqual(expires - forcedWindow(P, receivedAt, expires));
    },
  );

  test.prop({ attempt: fc.nat(100), r: fc.double({ min: 0, max: 1, noNaN: true }) }, { numRuns })(
    `retry delays stay in [0, retryCapMs] ${runsLabel}`,
    ({ attempt, r }) => {
      const delay = retryDelay(P, attempt, undefined, () => r);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(P.retryCapMs);
    },
  );
});
