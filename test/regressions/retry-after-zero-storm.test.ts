/**
 * Regression (issue #18, item 1): `Retry-After: 0`, a negative value or an HTTP-date already
 * past made every layer retry at once, over and over. `parseRetryAfter` turned them into 0,
 * the refresh policy used a server delay with no floor, and the exported `retryWithBackoff`
 * did the same. Measured against the emulator: about 1,200 token requests in 4 s while a
 * usable token was held (503), about 8,000 in 20 s for one cold `getToken` (429). A server
 * delay is now a lower bound on the next attempt: the wait is the larger of the backoff, a
 * floor and the hint, and 0, negative and past values are no hint.
 */
import { TestScheduler } from "rxjs/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { parseRetryAfter } from "../../src/credential/map-error.js";
import { isAuthenticationError } from "../../src/errors/index.js";
import { retryWithBackoff } from "../../src/operators/index.js";
import { createTokenRegistry, type TokenKey } from "../../src/streams/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { FakeSource, VirtualClock, classify } from "../streams/harness.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const scope = "https://storage.azure.com/.default";
const key: TokenKey = { id: "k" };

describe("Retry-After that asks for no wait at all", () => {
  it.each([
    ["0", "0"],
    ["a negative delay", "-5"],
    ["a past HTTP-date", "Thu, 01 Jan 1970 00:00:10 GMT"],
  ])("%s is no hint", (_, value) => {
    expect(parseRetryAfter(value, 1_000_000)).toBeUndefined();
  });

  it("a future delay or date still is one", () => {
    expect(parseRetryAfter("3", 0)).toBe(3_000);
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:10 GMT", 4_000)).toBe(6_000);
  });
});

describe("the engine in virtual time, a source answering transient + retryAfterMs 0", () => {
  it.each([0, -1_000, Number.NaN])(
    "with a usable token held, retryAfterMs %s does not retry faster than the floor (4 s)",
    async (retryAfterMs) => {
      const clock = new VirtualClock();
      // 2 ms per request, about a loopback round trip to the emulator.
      const source = new FakeSource(clock, 2);
      source.fallback = { kind: "token", lifetimeMs: 60_000, refreshInMs: 1_000 };
      // The worst jitter draw: full jitter would wait 0 ms every time.
      const registry = createTokenRegistry({
        acquire: source.acquire,
        classify,
        scheduler: clock,
        random: () => 0,
      });
      const subscription = registry.stream(key).subscribe();
      await clock.advance(2);
      source.fallback = { kind: "transient", retryAfterMs };

      await clock.advance(1_000 + 4_000);

      const during = source.requests.filter((request) => request.at >= 1_000).length;
      // The floor is 100 ms: at most one request per 102 ms (the old code made 2,000).
      expect(during).toBeGreaterThan(1);
      expect(during).toBeLessThanOrEqual(Math.ceil(4_000 / 102));
      subscription.unsubscribe();
      await registry.close();
    },
  );

  it("one cold get backs off exponentially over its 20 s retry budget", async () => {
    const clock = new VirtualClock();
    const source = new FakeSource(clock, 2);
    source.fallback = { kind: "transient", retryAfterMs: 0 };
    const registry = createTokenRegistry({
      acquire: source.acquire,
      classify,
      scheduler: clock,
      random: () => 0.5,
    });
    const outcome = registry.get(key).catch((error: unknown) => error);

    await clock.advance(25_000);

    expect(await outcome).toMatchObject({ transient: true });
    // Waits 250, 500, 1,000, 2,000, 4,000, 7,500, 7,500 ms: 7 requests (the old code: 10,000).
    expect(source.requests).toHaveLength(7);
    await registry.close();
  });

  it("a hint shorter than the backoff does not shorten it; a longer one lengthens it", async () => {
    const clock = new VirtualClock();
    const source = new FakeSource(clock, 0);
    source.script.push(
      { kind: "transient", retryAfterMs: 10 },
      { kind: "transient", retryAfterMs: 3_000 },
    );
    const registry = createTokenRegistry({
      acquire: source.acquire,
      classify,
      scheduler: clock,
      random: () => 0.5,
    });
    const token = registry.get(key);

    await clock.advance(10_000);

    await token;
    expect(source.requests.map((request) => request.at)).toEqual([0, 250, 3_250]);
    await registry.close();
  });
});

describe("retryWithBackoff, the exported operator", () => {
  it("takes the larger of the backoff and a Retry-After of 0", () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>("-#");
      const out = source.pipe(
        retryWithBackoff({
          classify: () => ({ transient: true, retryAfterMs: 0 }),
          baseMs: 4,
          capMs: 10,
          scheduler,
          random: () => 0.5,
        }),
      );
      // The backoff alone: 2, 4, 5, 5 (the old code resubscribed every frame).
      expectObservable(out, "^ 24ms !").toBe("");
      expectSubscriptions(source.subscriptions).toBe([
        "^!",
        "---^!",
        "--------^!",
        "--------------^!",
        "--------------------^!",
      ]);
    });
  });

  it("keeps a floor when the jitter draws 0", () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>("-#");
      const out = source.pipe(
        retryWithBackoff({
          classify: () => ({ transient: true, retryAfterMs: -1 }),
          baseMs: 100,
          capMs: 1_000,
          floorMs: 5,
          scheduler,
          random: () => 0,
        }),
      );
      expectObservable(out, "^ 13ms !").toBe("");
      expectSubscriptions(source.subscriptions).toBe(["^!", "------^!", "------------^!"]);
    });
  });
});

describe("against the emulator, a real short run", () => {
  let emulator: EntraEmulator;
  beforeAll(async () => {
    emulator = await startEntraEmulator({ tokenLifetimeSeconds: 60, refreshInSeconds: 1 });
  });
  afterAll(async () => {
    await emulator.stop();
  });

  it.each([
    ["429 + Retry-After: 0", 429, 0],
    ["503 + a past HTTP-date", 503, "Thu, 01 Jan 1970 00:00:00 GMT"],
  ] as const)(
    "one cold getToken against %s makes a handful of requests, not hundreds",
    async (_, status, retryAfter) => {
      const clientId = `storm-${status}`;
      emulator.registerApplication({ clientId, clientSecret: "s" });
      const fault = emulator.injectFault({
        match: { clientId },
        status,
        retryAfter,
        times: Number.POSITIVE_INFINITY,
      });
      const credential = new ClientSecretCredential(tenant, clientId, "s", {
        authorityHost: emulator.authorityHost,
        ca: emulator.caCertificate,
        refresh: { retryWithoutTokenMs: 2_000 },
      });
      try {
        const error = await credential.getToken(scope).catch((e: unknown) => e);

        expect(isAuthenticationError(error)).toBe(true);
        // Backoff from 500 ms with full jitter and a 100 ms floor fits at most ~8 attempts into
        // 2 s (the old code: ~800).
        const count = emulator.requestCount({ clientId });
        expect(count).toBeGreaterThan(1);
        expect(count).toBeLessThanOrEqual(20);
      } finally {
        fault.remove();
        await credential.close();
      }
    },
  );
});
