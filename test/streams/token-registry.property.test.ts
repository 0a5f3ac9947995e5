import type { AccessToken } from "@azure/core-auth";
import { fc } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { isCredentialUnavailableError } from "../../src/errors/index.js";
import {
  DEFAULT_REFRESH_POLICY,
  baseRefreshTime,
  createTokenRegistry,
  forcedWindow,
  maxJitter,
  type TokenKey,
  type TokenRegistry,
} from "../../src/streams/index.js";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { FakeSource, VirtualClock, classify, type Response } from "./harness.js";

const P = DEFAULT_REFRESH_POLICY;
const KEYS: TokenKey[] = [{ id: "k0" }, { id: "k1" }, { id: "k2", shortLived: true }];

/** A small deterministic PRNG so each run's jitter is reproducible from its seed. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface World {
  clock: VirtualClock;
  source: FakeSource;
  registry: TokenRegistry<TokenKey>;
  issued: Map<string, { issuedAt: number; expiresOn: number }>;
  /** Every violation of "never deliver a token inside its forced window" or of key isolation. */
  violations: string[];
  deliver: (keyId: string, token: AccessToken) => void;
}

function world(seed: number, lifetimeMs = 3_600_000): World {
  const clock = new VirtualClock();
  const source = new FakeSource(clock);
  source.fallback = { kind: "token", lifetimeMs };
  const issued = new Map<string, { issuedAt: number; expiresOn: number }>();
  const acquire = source.acquire;
  const registry = createTokenRegistry<TokenKey>({
    acquire: async (key, signal) => {
      const token = await acquire(key, signal);
      issued.set(token.token, { issuedAt: clock.now(), expiresOn: token.expiresOnTimestamp });
      return token;
    },
    classify,
    scheduler: clock,
    random: mulberry32(seed),
  });
  const violations: string[] = [];
  const deliver = (keyId: string, token: AccessToken): void => {
    const info = issued.get(token.token);
    if (info === undefined || !token.token.startsWith(`${keyId}#`)) {
      violations.push(`key ${keyId} got ${token.token}`);
      return;
    }
    const usableUntil = info.expiresOn - forcedWindow(P, info.issuedAt, info.expiresOn);
    if (!(clock.now() < usableUntil)) {
      violations.push(`${token.token} delivered at ${clock.now()}, usable until ${usableUntil}`);
    }
  };
  return { clock, source, registry, issued, violations, deliver };
}

const responseArb: fc.Arbitrary<Response> = fc.oneof(
  fc.record({
    kind: fc.constant("token" as const),
    lifetimeMs: fc.integer({ min: 20_000, max: 3 * 3_600_000 }),
    refreshInMs: fc.option(fc.integer({ min: 1_000, max: 3_600_000 }), { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant("transient" as const),
    retryAfterMs: fc.option(fc.integer({ min: 0, max: 30_000 }), { nil: undefined }),
  }),
  fc.constant({ kind: "permanent" as const }),
);

type Op =
  | { t: "get"; key: number; abort: boolean }
  | { t: "sub"; key: number }
  | { t: "unsub"; index: number }
  | { t: "advance"; ms: number }
  | { t: "script"; responses: Response[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant("get" as const), key: fc.nat(2), abort: fc.boolean() }),
  fc.record({ t: fc.constant("sub" as const), key: fc.nat(2) }),
  fc.record({ t: fc.constant("unsub" as const), index: fc.nat(5) }),
  fc.record({
    t: fc.constant("advance" as const),
    ms: fc.oneof(
      fc.integer({ min: 0, max: 1_000 }),
      // Lands a default 1-hour token between its refresh time and its forced window.
      fc.integer({ min: 3_300_000, max: 3_580_000 }),
      fc.integer({ min: 0, max: 4 * 3_600_000 }),
    ),
  }),
  fc.record({
    t: fc.constant("script" as const),
    responses: fc.array(responseArb, { maxLength: 4 }),
  }),
);

describe("createTokenRegistry properties", () => {
  it(`delivers no token inside its forced window or to another key, keeps one acquisition per key in flight, and leaves nothing behind after unsubscribe and close ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.array(opArb, { maxLength: 25 }), async (seed, ops) => {
        const w = world(seed);
        const subs: { unsubscribe(): void }[] = [];
        for (const op of ops) {
          if (op.t === "get") {
            const key = KEYS[op.key]!;
            const controller = new AbortController();
            w.registry.get(key, { signal: controller.signal }).then(
              (token) => w.deliver(key.id, token),
              () => undefined,
            );
            if (op.abort) controller.abort();
          } else if (op.t === "sub") {
            const key = KEYS[op.key]!;
            subs.push(
              w.registry.stream(key).subscribe({
                next: (token) => w.deliver(key.id, token),
                error: () => undefined,
              }),
            );
          } else if (op.t === "unsub") {
            subs.splice(op.index % Math.max(1, subs.length), 1)[0]?.unsubscribe();
          } else if (op.t === "script") {
            w.source.script.push(...op.responses);
          } else {
            await w.clock.advance(op.ms);
          }
          expect(w.source.maxInFlight).toBeLessThanOrEqual(1);
        }
        for (const sub of subs) sub.unsubscribe();
        // Once nobody subscribes, outstanding gets settle within the retry budget.
        await w.clock.advance(P.retryWithoutTokenMs + P.retryCapMs + 10_000);
        expect(w.clock.pending).toBe(0);
        expect(w.source.totalInFlight).toBe(0);
        await w.registry.close();
        expect(w.clock.pending).toBe(0);
        expect(w.violations).toEqual([]);
      }),
      { numRuns },
    );
  });

  it(`causes exactly one acquisition for any number of concurrent callers and subscribers on a cold key ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 99 }),
        async (gets, subscribers, latency) => {
          fc.pre(gets + subscribers > 0);
          const w = world(1);
          w.source.latencyMs = latency;
          const results = Array.from({ length: gets }, () => w.registry.get(KEYS[0]!));
          const seen: string[] = [];
          const subs = Array.from({ length: subscribers }, () =>
            w.registry.stream(KEYS[0]!).subscribe((t) => seen.push(t.token)),
          );
          await w.clock.advance(100);
          const tokens = await Promise.all(results);
          expect(w.source.requests).toHaveLength(1);
          expect(new Set([...tokens.map((t) => t.token), ...seen])).toEqual(new Set(["k0#1"]));
          for (const s of subs) s.unsubscribe();
          await w.registry.close();
        },
      ),
      { numRuns },
    );
  });

  it(`rides out a transient outage shorter than the usable life with no error and a fresh token right after it ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 10 * 60_000, max: 3 * 3_600_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (seed, lifetime, startFraction, lengthFraction) => {
          const w = world(seed, lifetime);
          const errors: unknown[] = [];
          const arrivals: number[] = [];
          const sub = w.registry.stream(KEYS[0]!).subscribe({
            next: () => arrivals.push(w.clock.now()),
            error: (e: unknown) => errors.push(e),
          });
          await w.clock.advance(100);
          const usableUntil = 100 + lifetime - forcedWindow(P, 100, 100 + lifetime);
          const latest = usableUntil - P.retryCapMs - 2 * w.source.latencyMs;
          const start = 100 + Math.floor(startFraction * (latest - 100));
          const end = start + Math.floor(lengthFraction * (latest - start));
          await w.clock.advance(start - w.clock.now());
          w.source.fallback = { kind: "transient" };
          await w.clock.advance(end - w.clock.now());
          w.source.fallback = { kind: "token", lifetimeMs: lifetime };
          const before = arrivals.length;
          const bound = end + P.retryCapMs + 2 * w.source.latencyMs;
          await w.clock.advance(bound - w.clock.now());

          expect(errors).toEqual([]);
          // If the outage hit any request, a token issued after its end has arrived.
          const hit = w.source.requests.some((r) => r.at >= start && r.at < end);
          const lastIssue = Math.max(...[...w.issued.values()].map((info) => info.issuedAt));
          if (hit) expect(lastIssue).toBeGreaterThanOrEqual(end);
          expect(arrivals.length).toBeGreaterThanOrEqual(before);
          expect(w.violations).toEqual([]);
          sub.unsubscribe();
          await w.registry.close();
        },
      ),
      { numRuns },
    );
  });

  it(`gives every waiter the same error after a permanent failure with no usable token, and a later call may try again ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 3 }),
        async (gets, subscribers) => {
          const w = world(7);
          w.source.script.push({ kind: "permanent" });
          const outcomes = Array.from({ length: gets }, () =>
            w.registry.get(KEYS[1]!).then(
              () => "resolved",
              (e: unknown) => e,
            ),
          );
          const subErrors: unknown[] = [];
          for (let i = 0; i < subscribers; i++) {
            w.registry.stream(KEYS[1]!).subscribe({ error: (e: unknown) => subErrors.push(e) });
          }
          await w.clock.advance(100);
          const errors = await Promise.all(outcomes);
          const first = errors[0];
          expect(first).toBeInstanceOf(Error);
          for (const e of [...errors, ...subErrors]) expect(e).toBe(first);
          expect(w.source.requests).toHaveLength(1);
          const again = w.registry.get(KEYS[1]!);
          await w.clock.advance(100);
          expect((await again).token).toBe("k1#2");
          await w.registry.close();
        },
      ),
      { numRuns },
    );
  });

  it(`refreshes a subscribed key inside the policy's window for any lifetime, refresh_in and jitter ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 4_000, max: 26 * 3_600_000 }),
        fc.option(fc.double({ min: 0.01, max: 1.2, noNaN: true }), { nil: undefined }),
        async (seed, lifetime, refreshFraction) => {
          const w = world(seed);
          const refreshInMs =
            refreshFraction === undefined
              ? undefined
              : Math.max(1, Math.floor(lifetime * refreshFraction));
          w.source.fallback = { kind: "token", lifetimeMs: lifetime, refreshInMs };
          w.source.latencyMs = 0;
          const sub = w.registry.stream(KEYS[0]!).subscribe();
          await w.clock.advance(0);
          await w.clock.advance(lifetime);
          const [first, second] = w.source.requests;
          expect(second).toBeDefined();
          const received = first!.at;
          const expires = received + lifetime;
          const refreshAfter = refreshInMs === undefined ? undefined : received + refreshInMs;
          const base = baseRefreshTime(P, received, expires, refreshAfter);
          expect(second!.at).toBeLessThanOrEqual(Math.ceil(base));
          expect(second!.at).toBeGreaterThanOrEqual(
            Math.floor(base - maxJitter(P, received, base)),
          );
          sub.unsubscribe();
          await w.registry.close();
          expect(w.violations).toEqual([]);
        },
      ),
      { numRuns },
    );
  });

  it(`fails every call after close() with CredentialUnavailableError ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(2), async (key) => {
        const w = world(3);
        await w.registry.close();
        await expect(w.registry.get(KEYS[key]!)).rejects.toSatisfy(isCredentialUnavailableError);
      }),
      { numRuns: Math.min(numRuns, 20) },
    );
  });
});
