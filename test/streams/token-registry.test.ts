import type { AccessToken } from "@azure/core-auth";
import { describe, expect, it } from "vitest";
import {
  isAbortError,
  isCredentialUnavailableError,
  isInvalidArgumentError,
} from "../../src/errors/index.js";
import { createTokenRegistry, type RegistryEvent, type TokenKey } from "../../src/streams/index.js";
import { FakeError, FakeSource, VirtualClock, classify, settle } from "./harness.js";

const HOUR = 3_600_000;

function setup(options: { random?: () => number; maxShortLivedKeys?: number } = {}) {
  const clock = new VirtualClock();
  const source = new FakeSource(clock);
  const events: RegistryEvent[] = [];
  const registry = createTokenRegistry<TokenKey>({
    acquire: source.acquire,
    classify,
    scheduler: clock,
    random: options.random ?? (() => 0),
    onEvent: (event) => events.push(event),
    ...(options.maxShortLivedKeys === undefined
      ? {}
      : { maxShortLivedKeys: options.maxShortLivedKeys }),
  });
  return { clock, source, events, registry };
}

function record(
  registry: ReturnType<typeof setup>["registry"],
  key: TokenKey,
  clock: VirtualClock,
) {
  const seen: { at: number; token: string }[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const subscription = registry.stream(key).subscribe({
    next: (t: AccessToken) => seen.push({ at: clock.now(), token: t.token }),
    error: (e: unknown) => errors.push(e),
    complete: () => {
      completed = true;
    },
  });
  return { seen, errors, subscription, isCompleted: () => completed };
}

const a: TokenKey = { id: "a" };
const b: TokenKey = { id: "b" };

describe("createTokenRegistry: single-flight and the get fast path", () => {
  it("serves concurrent callers and subscribers of a cold key with one acquisition", async () => {
    const { clock, source, registry } = setup();
    const gets = Array.from({ length: 10 }, () => registry.get(a));
    const subs = [record(registry, a, clock), record(registry, a, clock)];

    await clock.advance(100);

    const tokens = await Promise.all(gets);
    expect(new Set(tokens.map((t) => t.token))).toEqual(new Set(["a#1"]));
    expect(subs.map((s) => s.seen.map((x) => x.token))).toEqual([["a#1"], ["a#1"]]);
    expect(source.countFor("a")).toBe(1);
  });

  it("answers a fresh cached token with the same Promise and arms no timer", async () => {
    const { clock, source, registry } = setup();
    const first = registry.get(a);
    await clock.advance(100);
    await first;

    const again = registry.get(a);
    const later = registry.get(a);

    expect(again).toBe(later);
    expect((await again).token).toBe("a#1");
    expect(clock.pending).toBe(0);
    expect(source.countFor("a")).toBe(1);
  });

  it("returns a token past its refresh time at once and refreshes it once in the background", async () => {
    const { clock, source, registry } = setup();
    void registry.get(a);
    await clock.advance(100);
    // A 1-hour token refreshes 5 minutes before expiry (random = 0: no jitter).
    await clock.advance(HOUR - 300_000);

    const stale = await Promise.all([registry.get(a), registry.get(a)]);
    expect(stale.map((t) => t.token)).toEqual(["a#1", "a#1"]);
    expect(source.countFor("a")).toBe(2);
    await clock.advance(100);

    expect((await registry.get(a)).token).toBe("a#2");
    expect(source.countFor("a")).toBe(2);
  });

  it("never hands out a token inside its forced window: callers join a new acquisition", async () => {
    const { clock, source, registry } = setup();
    void registry.get(a);
    await clock.advance(100);
    await clock.advance(HOUR - 30_000);

    const pending = registry.get(a);
    await clock.advance(100);

    expect((await pending).token).toBe("a#2");
    expect(source.countFor("a")).toBe(2);
  });

  it("keeps keys apart", async () => {
    const { clock, registry } = setup();
    const [ta, tb] = [registry.get(a), registry.get(b)];
    await clock.advance(100);
    expect((await ta).token).toBe("a#1");
    expect((await tb).token).toBe("b#2");
  });
});

describe("createTokenRegistry: abortSignal", () => {
  it("rejects only the aborting caller while others still wait", async () => {
    const { clock, source, registry } = setup();
    const controller = new AbortController();
    const aborted = registry.get(a, { signal: controller.signal });
    const other = registry.get(a);

    controller.abort();

    await expect(aborted).rejects.toSatisfy(isAbortError);
    expect(source.requests[0]!.signal.aborted).toBe(false);
    await clock.advance(100);
    expect((await other).token).toBe("a#1");
  });

  it("cancels the acquisition when its last waiter aborts", async () => {
    const { clock, source, registry } = setup();
    const controller = new AbortController();
    const aborted = registry.get(a, { signal: controller.signal });

    controller.abort();

    await expect(aborted).rejects.toSatisfy(isAbortError);
    expect(source.requests[0]!.signal.aborted).toBe(true);
    expect(clock.pending).toBe(0);
    await expect(registry.get(a, { signal: controller.signal })).rejects.toSatisfy(isAbortError);
  });
});

describe("createTokenRegistry: stream", () => {
  it("refreshes in the background while subscribed and stops with the last unsubscriber", async () => {
    const { clock, source, registry } = setup();
    const sub = record(registry, a, clock);
    await clock.advance(100);
    await clock.advance(3 * (HOUR - 300_000));

    expect(sub.seen).toEqual([
      { at: 100, token: "a#1" },
      { at: 100 + (HOUR - 300_000) + 100, token: "a#2" },
      { at: 100 + 2 * (HOUR - 300_000) + 200, token: "a#3" },
    ]);
    sub.subscription.unsubscribe();
    expect(clock.pending).toBe(0);
    expect(source.totalInFlight).toBe(0);
  });

  it("replays the current usable token to a late subscriber, never a stale one", async () => {
    const { clock, registry } = setup();
    const first = record(registry, a, clock);
    await clock.advance(100);
    const late = record(registry, a, clock);
    expect(late.seen.map((s) => s.token)).toEqual(["a#1"]);
    first.subscription.unsubscribe();
    late.subscription.unsubscribe();
  });

  it("rides out a transient outage without errors and delivers a fresh token after it", async () => {
    const { clock, source, events, registry } = setup({ random: () => 0.5 });
    source.fallback = { kind: "token", lifetimeMs: HOUR };
    const sub = record(registry, a, clock);
    await clock.advance(100);
    // The outage starts when the refresh is due and lasts 10 minutes.
    source.fallback = { kind: "transient" };
    await clock.advance(HOUR - 300_000);
    await clock.advance(600_000 - 300_000 - 40_000);
    source.fallback = { kind: "token", lifetimeMs: HOUR };
    await clock.advance(20_000);

    expect(sub.errors).toEqual([]);
    expect(sub.seen.map((s) => s.token)).toHaveLength(2);
    expect(events.some((e) => e.type === "acquire-failure" && e.transient)).toBe(true);
    expect(source.maxInFlight).toBe(1);
    sub.subscription.unsubscribe();
  });

  it("does not hammer a permanent failure while a usable token is served", async () => {
    const { clock, source, registry } = setup();
    const sub = record(registry, a, clock);
    await clock.advance(100);
    source.fallback = { kind: "permanent" };
    await clock.advance(HOUR - 300_000 + 100);
    const afterFailure = source.requests.length;

    await clock.advance(59_000);

    expect(source.requests.length).toBe(afterFailure);
    expect((await registry.get(a)).token).toBe("a#1");
    expect(sub.errors).toEqual([]);
    sub.subscription.unsubscribe();
  });

  it("gives every waiter the same error when no usable token can be had, and tries again later", async () => {
    const { clock, source, registry } = setup();
    source.script.push({ kind: "permanent" });
    const gets = [registry.get(a), registry.get(a)];
    const sub = record(registry, a, clock);
    await clock.advance(100);

    const errors = await Promise.all(
      gets.map((p) =>
        p.then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    expect(errors[0]).toBeInstanceOf(FakeError);
    expect(errors[1]).toBe(errors[0]);
    expect(sub.errors).toEqual([errors[0]]);
    expect(source.countFor("a")).toBe(1);

    const retry = registry.get(a);
    await clock.advance(100);
    expect((await retry).token).toBe("a#2");
  });
});

describe("createTokenRegistry: short-lived keys", () => {
  it("goes to the network on every get, is forgotten when idle, and is bounded", async () => {
    const { clock, source, events, registry } = setup({ maxShortLivedKeys: 2 });
    const claims: TokenKey = { id: "a|claims", shortLived: true };
    const first = registry.get(claims);
    const joined = registry.get(claims);
    await clock.advance(100);
    expect((await first).token).toBe((await joined).token);
    const second = registry.get(claims);
    await clock.advance(100);
    expect((await second).token).not.toBe((await first).token);
    expect(source.countFor("a|claims")).toBe(2);
    expect(clock.pending).toBe(0);

    // The bound: with two claims keys busy, a third is refused rather than evicting a busy
    // one (whose next caller would otherwise start a second request in flight).
    const x = registry.get({ id: "x", shortLived: true });
    const y = registry.get({ id: "y", shortLived: true });
    await expect(registry.get({ id: "z", shortLived: true })).rejects.toSatisfy(
      isCredentialUnavailableError,
    );
    const xAgain = registry.get({ id: "x", shortLived: true });
    expect(source.countFor("x")).toBe(1);
    expect(source.countFor("z")).toBe(0);
    await clock.advance(100);
    expect((await xAgain).token).toBe((await x).token);
    await y;

    // Once idle they are forgotten, and a new claims key fits again.
    const z = registry.get({ id: "z", shortLived: true });
    await clock.advance(100);
    expect((await z).token).toEqual(expect.any(String));
    expect(events.filter((e) => e.type === "key-evicted")).toEqual([]);
  });

  it("refuses a claims key beyond the bound on token$ too, as a typed error notification", async () => {
    const { clock, source, registry } = setup({ maxShortLivedKeys: 1 });
    const held = record(registry, { id: "c1", shortLived: true }, clock);

    const refused = record(registry, { id: "c2", shortLived: true }, clock);

    expect(refused.errors[0]).toSatisfy(isCredentialUnavailableError);
    expect(source.countFor("c2")).toBe(0);
    await clock.advance(100);
    expect(held.seen).toHaveLength(1);
  });
});

describe("createTokenRegistry: close", () => {
  it("completes streams, rejects waiters, clears timers, and refuses later calls", async () => {
    const { clock, source, registry } = setup();
    const sub = record(registry, a, clock);
    await clock.advance(100);
    const waiting = registry.get(b);

    await registry.close();

    expect(sub.isCompleted()).toBe(true);
    await expect(waiting).rejects.toSatisfy(isCredentialUnavailableError);
    expect(source.requests.at(-1)!.signal.aborted).toBe(true);
    expect(clock.pending).toBe(0);
    await expect(registry.get(a)).rejects.toThrow(/closed/);
    const late = record(registry, a, clock);
    expect(late.errors[0]).toSatisfy(isCredentialUnavailableError);
    await registry.close();
    await settle();
  });
});

describe("createTokenRegistry: options", () => {
  it("rejects a bad policy option or bound, naming it", () => {
    const clock = new VirtualClock();
    const source = new FakeSource(clock);
    expect(() =>
      createTokenRegistry({ acquire: source.acquire, classify, policy: { retryCapMs: -1 } }),
    ).toThrow(/retryCapMs/);
    let thrown: unknown;
    try {
      createTokenRegistry({ acquire: source.acquire, classify, maxShortLivedKeys: 0 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toSatisfy(isInvalidArgumentError);
  });
});
