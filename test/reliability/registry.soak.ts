/**
 * The soak (`npm run test:soak`): the chaos sequences at FC_NUM_RUNS (10,000) with longer
 * sequences, and one virtual hour of 1,000 subscribed keys whose token source fails 5% of
 * the time, checking that nothing leaks (subscriptions, timers, in-flight requests) and that
 * the heap after GC ends where it started; and a virtual day of 100,000 keys coming and going
 * (refused, expiring unused, subscribed), whose entries, timers and heap follow the live keys.
 */
import { fc } from "@fast-check/vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_REFRESH_POLICY,
  createTokenRegistry,
  type TokenKey,
} from "../../src/streams/index.js";
import { VirtualClock } from "../streams/harness.js";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { ChaosError, ChaosWorld, chaosCommands, runChaos } from "./support/chaos-model.js";
import { expectFlat } from "./support/expect-flat.js";
import { churnForADay } from "./support/key-churn.js";

describe("soak", () => {
  it(`chaos sequences keep every invariant ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.constantFrom(40_000, 600_000, 3_600_000),
        fc.commands(chaosCommands(12, 4), { maxCommands: 80 }),
        async (seed, lifetime, commands) => {
          await runChaos(new ChaosWorld(12, 4, seed, () => lifetime), commands);
        },
      ),
      { numRuns },
    );
  });

  it("one virtual hour, 1,000 keys, 5% failures: no leak, flat heap", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const clock = new VirtualClock();
    let seed = 42;
    const random = (): number => {
      seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
      return seed / 4_294_967_296;
    };
    let inFlight = 0;
    let maxInFlightPerKey = 0;
    const perKey = new Map<string, number>();
    let serial = 0;
    const registry = createTokenRegistry<TokenKey>({
      scheduler: clock,
      random,
      classify: (error) => ({ transient: error instanceof ChaosError && error.transient }),
      acquire: (key, signal) => {
        inFlight += 1;
        const open = (perKey.get(key.id) ?? 0) + 1;
        perKey.set(key.id, open);
        maxInFlightPerKey = Math.max(maxInFlightPerKey, open);
        const fail = random() < 0.05;
        return new Promise((resolve, reject) => {
          const done = (): void => {
            inFlight -= 1;
            perKey.set(key.id, (perKey.get(key.id) ?? 1) - 1);
          };
          const timer = clock.schedule(() => {
            done();
            signal.removeEventListener("abort", onAbort);
            const at = clock.now();
            // 10-minute tokens: six refreshes per key in the hour.
            if (fail) reject(new ChaosError(true, undefined));
            else resolve({ token: `${key.id}#${++serial}`, expiresOnTimestamp: at + 600_000 });
          }, 50);
          const onAbort = (): void => {
            timer.unsubscribe();
            done();
            reject(new Error("aborted"));
          };
          signal.addEventListener("abort", onAbort, { once: true });
        });
      },
    });
    const keys = Array.from({ length: 1_000 }, (_, i): TokenKey => ({ id: `key-${i}` }));
    let errors = 0;
    let stale = 0;
    const subscribe = () =>
      keys.map((key) =>
        registry.stream(key).subscribe({
          next: (token) => {
            if (!(clock.now() < token.expiresOnTimestamp - DEFAULT_REFRESH_POLICY.forcedWindowMs))
              stale += 1;
          },
          error: () => (errors += 1),
        }),
      );

    // Warm up for ten minutes, then measure the heap.
    let subscriptions = subscribe();
    await clock.advance(10 * 60_000);
    for (const s of subscriptions) s.unsubscribe();
    await clock.advance(0);
    gc();
    const before = process.memoryUsage().heapUsed;

    subscriptions = subscribe();
    for (let minute = 0; minute < 60; minute += 1) await clock.advance(60_000);
    for (const s of subscriptions) s.unsubscribe();
    await clock.advance(0);
    expect(serial).toBeGreaterThan(6_000);
    expect(stale).toBe(0);
    // 5% isolated failures are always retried within a token's life.
    expect(errors).toBe(0);
    expect(maxInFlightPerKey).toBe(1);
    // The last unsubscriber stops each key's refresh and cancels its request.
    expect(clock.pending).toBe(0);
    expect(inFlight).toBe(0);
    gc();
    const after = process.memoryUsage().heapUsed;
    expect(after - before).toBeLessThan(2 * 1024 * 1024);
    await registry.close();
    await clock.advance(0);
    expect(clock.pending).toBe(0);
  });

  it("a virtual day of 100,000 keys coming and going: entries, timers and heap of the live keys only", async () => {
    const figures = await churnForADay(100_000);
    // The soak's figures, for the reader of its output.
    console.log(`key churn: ${JSON.stringify(figures)}`);

    expectFlat(figures);
  });
});
