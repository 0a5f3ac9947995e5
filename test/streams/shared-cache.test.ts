/**
 * The shared-cache path of the engine on virtual time: registries standing for processes of a
 * fleet, each with its own token source, share one in-memory store (`createMemoryTokenStore`
 * on the same virtual clock, so its entries and leases expire on that clock). The store can be
 * made unavailable (every call rejects and its updates are lost, as with Redis away).
 *
 * Timeline unless said otherwise: tokens live 1 h with no `refresh_in`, so they are due 5 min
 * before expiry (55 min, less up to 10 % jitter) and leave their usable life 30 s before
 * expiry; requests take 100 ms.
 */
import type { AccessToken } from "@azure/core-auth";
import { fc } from "@fast-check/vitest";
import { filter } from "rxjs";
import { describe, expect, it } from "vitest";
import { createMemoryTokenStore } from "../../src/stores/index.js";
import {
  createTokenRegistry,
  type RegistryEvent,
  type SharedTokenCache,
  type TokenKey,
  type TokenRegistry,
} from "../../src/streams/index.js";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { FakeSource, VirtualClock, classify } from "./harness.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const a: TokenKey = { id: "a" };
const claims: TokenKey = { id: "a|claims", shortLived: true };

class StoreDown extends Error {
  constructor() {
    super("store unavailable");
  }
}

/** One store shared by the processes of a fleet, with a switch to make it unavailable. */
function sharedStore(clock: VirtualClock) {
  const store = createMemoryTokenStore({ now: () => clock.now() });
  const calls: string[] = [];
  const state = { down: false };
  const guard = <T>(what: string, call: () => Promise<T>): Promise<T> => {
    calls.push(what);
    return state.down ? Promise.reject(new StoreDown()) : call();
  };
  const cache: SharedTokenCache<TokenKey> = {
    keyOf: (key) => (key.shortLived === true ? undefined : `store:${key.id}`),
    read: (key) => guard(`read ${key}`, () => store.read(key)),
    write: (key, entry) => guard(`write ${key}`, () => store.write(key, entry)),
    lease: (key, ttlMs) => guard(`lease ${key}`, () => store.lease!(key, ttlMs)),
    // Updates published while the store is away are lost, as Redis pub/sub loses them.
    watch: () => store.watch!().pipe(filter(() => !state.down)),
  };
  return { store, cache, calls, state };
}

interface Process {
  readonly name: string;
  readonly source: FakeSource;
  readonly registry: TokenRegistry<TokenKey>;
  readonly events: RegistryEvent[];
}

function fleet(
  count: number,
  options: { leaseTtlMs?: number; random?: (index: number) => () => number } = {},
) {
  const clock = new VirtualClock();
  const shared = sharedStore(clock);
  const processes: Process[] = Array.from({ length: count }, (_, index) => {
    const name = `p${index}`;
    const source = new FakeSource(clock);
    const events: RegistryEvent[] = [];
    const registry = createTokenRegistry<TokenKey>({
      // Tokens named after the process that acquired them: `p0:a#1`.
      acquire: async (key, signal) => {
        const token = await source.acquire(key, signal);
        return { ...token, token: `${name}:${token.token}` };
      },
      classify,
      scheduler: clock,
      random: options.random?.(index) ?? (() => 0),
      onEvent: (event) => events.push(event),
      sharedCache: shared.cache,
      ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
    });
    return { name, source, registry, events };
  });
  const requests = (): number => processes.reduce((sum, p) => sum + p.source.requests.length, 0);
  return { clock, shared, processes, requests };
}

function follow(registry: TokenRegistry<TokenKey>, key: TokenKey, clock: VirtualClock) {
  const seen: { at: number; token: string }[] = [];
  const errors: unknown[] = [];
  const subscription = registry.stream(key).subscribe({
    next: (t: AccessToken) => seen.push({ at: clock.now(), token: t.token }),
    error: (e: unknown) => errors.push(e),
  });
  return { seen, errors, subscription, tokens: () => seen.map((s) => s.token) };
}

describe("shared cache: one acquisition per key for the whole fleet", () => {
  it("only the lease holder acquires; the other takes the written token with no request and emits it, on every refresh", async () => {
    // Arrange: different jitter, so the two do not refresh at the same instant.
    const { clock, processes, requests } = fleet(2, {
      random: (index) => () => (index === 0 ? 0 : 0.5),
    });
    const [p0, p1] = processes as [Process, Process];

    // Act
    const s0 = follow(p0.registry, a, clock);
    const s1 = follow(p1.registry, a, clock);
    await clock.advance(3 * HOUR);

    // Assert: the first token and a refresh every 52.5 min (p1's jitter makes it refresh
    // first): both streams emit the same 4 tokens, each acquired once.
    expect(s0.tokens()).toEqual(["p0:a#1", "p1:a#1", "p1:a#2", "p1:a#3"]);
    expect(s1.tokens()).toEqual(s0.tokens());
    expect(requests()).toBe(4);
    expect(p1.events.filter((e) => e.type === "shared-token").length).toBeGreaterThan(0);
    expect(s0.errors).toEqual([]);
    expect(s1.errors).toEqual([]);
    s0.subscription.unsubscribe();
    s1.subscription.unsubscribe();
  });

  it("the process that waits on the lease emits the holder's token as soon as it is written", async () => {
    // Arrange
    const { clock, processes, requests } = fleet(2);
    const [p0, p1] = processes as [Process, Process];

    // Act: both cold at once; p0 takes the lease (it asks first), p1 waits.
    const s0 = follow(p0.registry, a, clock);
    const s1 = follow(p1.registry, a, clock);
    await clock.advance(100);

    // Assert
    expect(requests()).toBe(1);
    expect(p1.source.requests).toHaveLength(0);
    expect(s0.seen).toEqual([{ at: 100, token: "p0:a#1" }]);
    expect(s1.seen).toEqual([{ at: 100, token: "p0:a#1" }]);
    s0.subscription.unsubscribe();
    s1.subscription.unsubscribe();
  });
});

describe("shared cache: a lease holder that never answers", () => {
  it("blocks a cold process no longer than the lease TTL", async () => {
    // Arrange: p0's requests hang; the lease lasts 5 s.
    const { clock, processes } = fleet(2, { leaseTtlMs: 5_000 });
    const [p0, p1] = processes as [Process, Process];
    p0.source.latencyMs = 10 * HOUR;

    // Act
    const s0 = follow(p0.registry, a, clock);
    const s1 = follow(p1.registry, a, clock);
    await clock.advance(6_000);

    // Assert: p1 asked once the lease lapsed, and got its own token.
    expect(p1.source.requests.map((r) => r.at)).toEqual([5_000]);
    expect(s1.seen).toEqual([{ at: 5_100, token: "p1:a#1" }]);
    s0.subscription.unsubscribe();
    s1.subscription.unsubscribe();
  });

  it("never blocks a process past its token's usable life, however long the lease", async () => {
    // Arrange: tokens live 100 s (usable until 75 s, due at 50 s); the lease is 10 minutes.
    const { clock, processes } = fleet(2, { leaseTtlMs: 10 * MINUTE });
    const [p0, p1] = processes as [Process, Process];
    p0.source.fallback = { kind: "token", lifetimeMs: 100_000 };
    p1.source.fallback = { kind: "token", lifetimeMs: 100_000 };
    const s0 = follow(p0.registry, a, clock);
    const s1 = follow(p1.registry, a, clock);
    await clock.advance(100);
    expect(s1.tokens()).toEqual(["p0:a#1"]);

    // Act: p0 takes the refresh lease at 50.1 s and its request hangs.
    p0.source.latencyMs = 10 * HOUR;
    await clock.advance(80_000);

    // Assert: p1 asked by the end of the token's usable life (75.1 s), not after 10 minutes.
    expect(p1.source.requests).toHaveLength(1);
    expect(p1.source.requests[0]!.at).toBeLessThanOrEqual(75_100);
    expect(s1.tokens()).toEqual(["p0:a#1", "p1:a#1"]);
    expect(s1.errors).toEqual([]);
    s0.subscription.unsubscribe();
    s1.subscription.unsubscribe();
  });
});

describe("shared cache: unavailable store", () => {
  it("makes each process acquire on its own, logs the outage once, and shares again once the store answers", async () => {
    // Arrange
    const { clock, shared, processes, requests } = fleet(2);
    const [p0, p1] = processes as [Process, Process];
    shared.state.down = true;

    // Act 1: cold start while the store is away.
    const s0 = follow(p0.registry, a, clock);
    const s1 = follow(p1.registry, a, clock);
    await clock.advance(100);

    // Assert 1: each got its own token.
    expect(s0.tokens()).toEqual(["p0:a#1"]);
    expect(s1.tokens()).toEqual(["p1:a#1"]);
    for (const p of processes) {
      expect(p.events.filter((e) => e.type === "shared-cache-unavailable")).toHaveLength(1);
    }

    // Act 2: the store is back before the refresh (at 55 min).
    shared.state.down = false;
    await clock.advance(55 * MINUTE + 200);

    // Assert 2: one request for the refresh, both emit its token; recovery logged.
    expect(requests()).toBe(3);
    expect(s0.seen.at(-1)?.token).toBe(s1.seen.at(-1)?.token);
    for (const p of processes) {
      expect(p.events.filter((e) => e.type === "shared-cache-available")).toHaveLength(1);
    }
    s0.subscription.unsubscribe();
    s1.subscription.unsubscribe();
  });
});

describe("shared cache: cold start", () => {
  it("serves a fresh stored token with no acquisition", async () => {
    // Arrange: another process wrote a 1 h token at 0 (due at 30 min); we start at 10 min.
    const { clock, shared, processes } = fleet(1);
    const [p0] = processes as [Process];
    await shared.store.write("store:a", {
      token: "other:a#7",
      expiresOnTimestamp: HOUR,
      refreshAfterTimestamp: 30 * MINUTE,
    });
    await clock.advance(10 * MINUTE);

    // Act
    const token = p0.registry.get(a);
    await clock.advance(1);

    // Assert
    await expect(token).resolves.toMatchObject({ token: "other:a#7" });
    expect(p0.source.requests).toHaveLength(0);
    await expect(p0.registry.get(a)).resolves.toMatchObject({ token: "other:a#7" });
    expect(p0.source.requests).toHaveLength(0);
  });

  it("serves a stored token that is usable but already due at once, and refreshes it in the background (get's stale-but-usable rule)", async () => {
    // Arrange: a 1 h token issued at 0, due at 30 min; this process starts at 40 min.
    const { clock, shared, processes } = fleet(1);
    const [p0] = processes as [Process];
    await shared.store.write("store:a", {
      token: "other:a#7",
      expiresOnTimestamp: HOUR,
      refreshAfterTimestamp: 30 * MINUTE,
    });
    await clock.advance(40 * MINUTE);

    // Act
    const first = p0.registry.get(a);
    await clock.advance(1);
    const served = await first;
    await clock.advance(200);

    // Assert: the stored token at once, one background request, its token next.
    expect(served.token).toBe("other:a#7");
    expect(p0.source.requests.map((r) => r.at)).toEqual([40 * MINUTE]);
    await expect(p0.registry.get(a)).resolves.toMatchObject({ token: "p0:a#1" });
    await expect(shared.store.read("store:a")).resolves.toMatchObject({ token: "p0:a#1" });
  });

  it("never serves a stored token inside its forced window, even one read late in its life", async () => {
    // Arrange: a 1 h token (forced window 30 s) read with 20 s left. Computed from the time
    // of reading, its window would be only 5 s (25 % of 20 s) and it would look usable.
    const { clock, shared, processes } = fleet(1);
    const [p0] = processes as [Process];
    await shared.store.write("store:a", {
      token: "other:a#7",
      expiresOnTimestamp: HOUR,
      refreshAfterTimestamp: 30 * MINUTE,
    });
    await clock.advance(HOUR - 20_000);

    // Act
    const s = follow(p0.registry, a, clock);
    const got = p0.registry.get(a);
    await clock.advance(200);

    // Assert
    await expect(got).resolves.toMatchObject({ token: "p0:a#1" });
    expect(s.tokens()).toEqual(["p0:a#1"]);
    expect(p0.source.requests).toHaveLength(1);
    s.subscription.unsubscribe();
  });
});

describe("shared cache: watched updates and keys kept out", () => {
  it("a watched update with a later expiry replaces the token at once and moves the refresh", async () => {
    // Arrange
    const { clock, shared, processes } = fleet(1);
    const [p0] = processes as [Process];
    const s = follow(p0.registry, a, clock);
    await clock.advance(100);
    expect(s.tokens()).toEqual(["p0:a#1"]);

    // Act: at 10 min another process writes a token expiring at 70 min (due at 40 min).
    await clock.advance(10 * MINUTE - 100);
    await shared.store.write("store:a", {
      token: "other:a#9",
      expiresOnTimestamp: 70 * MINUTE,
      refreshAfterTimestamp: 40 * MINUTE,
    });
    await clock.advance(1);

    // Assert: emitted at once; the refresh moves from 55 min (ours) to 40 min (its own).
    expect(s.seen).toEqual([
      { at: 100, token: "p0:a#1" },
      { at: 10 * MINUTE, token: "other:a#9" },
    ]);
    await clock.advance(35 * MINUTE - 10 * MINUTE);
    expect(p0.source.requests).toHaveLength(1);
    await clock.advance(6 * MINUTE);
    expect(p0.source.requests.map((r) => r.at)).toEqual([0, 40 * MINUTE]);
    expect(s.tokens().at(-1)).toBe("p0:a#2");
    s.subscription.unsubscribe();
  });

  it("claims (short-lived) keys never touch the cache", async () => {
    // Arrange
    const { clock, shared, processes } = fleet(1);
    const [p0] = processes as [Process];

    // Act
    const got = p0.registry.get(claims);
    await clock.advance(100);

    // Assert
    await expect(got).resolves.toMatchObject({ token: "p0:a|claims#1" });
    expect(shared.calls).toEqual([]);
  });
});

describe("shared cache: single-flight per registry", () => {
  it(`never runs two acquisitions of one key at once in a process, whatever the interleaving of gets, subscriptions, store outages and writes elsewhere ${runsLabel}`, async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("get" as const), p: fc.nat(2) }),
      fc.record({ kind: fc.constant("subscribe" as const), p: fc.nat(2) }),
      fc.record({ kind: fc.constant("unsubscribe" as const), p: fc.nat(2) }),
      fc.record({ kind: fc.constant("toggle-store" as const) }),
      fc.record({
        kind: fc.constant("foreign-write" as const),
        lifetimeMs: fc.integer({ min: 1_000, max: 2 * HOUR }),
      }),
      fc.record({
        kind: fc.constant("wait" as const),
        ms: fc.integer({ min: 0, max: 40 * MINUTE }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), fc.nat(), async (ops, seed) => {
        const { clock, shared, processes } = fleet(3, {
          random: (index) => () => ((seed + index * 7919) % 1000) / 1000,
        });
        for (const p of processes) p.source.latencyMs = 100 + (seed % 500);
        const subscriptions: ReturnType<typeof follow>[][] = processes.map(() => []);
        let foreign = 0;
        for (const o of ops) {
          switch (o.kind) {
            case "get":
              processes[o.p]!.registry.get(a).catch(() => undefined);
              break;
            case "subscribe":
              subscriptions[o.p]!.push(follow(processes[o.p]!.registry, a, clock));
              break;
            case "unsubscribe":
              subscriptions[o.p]!.pop()?.subscription.unsubscribe();
              break;
            case "toggle-store":
              shared.state.down = !shared.state.down;
              break;
            case "foreign-write":
              await shared.store
                .write("store:a", {
                  token: `other:a#${++foreign}`,
                  expiresOnTimestamp: clock.now() + o.lifetimeMs,
                  refreshAfterTimestamp: clock.now() + o.lifetimeMs / 2,
                })
                .catch(() => undefined);
              break;
            case "wait":
              await clock.advance(o.ms);
              break;
          }
        }
        await clock.advance(HOUR);
        for (const p of processes) expect(p.source.maxInFlight).toBeLessThanOrEqual(1);
        for (const subs of subscriptions) for (const s of subs) s.subscription.unsubscribe();
        await Promise.all(processes.map((p) => p.registry.close()));
      }),
      { numRuns },
    );
  });
});
