/**
 * Stream behaviour of the registry in marbles. `acquire` returns a cold Observable here, so
 * `expectSubscriptions` on it proves how many acquisitions ran and exactly when.
 *
 * Timeline of every test: a token lives 100 ms, so (with jitter off) it refreshes at
 * half-life (50 ms after arrival) and leaves its usable life at 75 ms (forced window: 25% of
 * a lifetime this short). Each acquisition takes 2 ms.
 */
import { describe, expect, it } from "vitest";
import { map, type Observable } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { createTokenRegistry, type AcquiredToken, type TokenKey } from "../../src/streams/index.js";
import { AuthenticationError } from "../../src/errors/index.js";

const LIFETIME = 100;

const newScheduler = (): TestScheduler =>
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const serviceError = (transient: boolean): AuthenticationError =>
  new AuthenticationError(
    transient ? 503 : 401,
    { error: transient ? "temporarily_unavailable" : "invalid_client", errorDescription: "" },
    { transient, retryAfterMs: transient ? 5 : undefined },
  );

/**
 * A registry whose n-th acquisition subscribes to `responses[n]` (the last one repeats) and
 * turns its `a` into a token named `t<n+1>` that lives {@link LIFETIME} ms from then.
 */
function registryOver(scheduler: TestScheduler, responses: readonly Observable<string>[]) {
  let calls = 0;
  const acquire = (): Observable<AcquiredToken> => {
    const response = responses[Math.min(calls, responses.length - 1)]!;
    const name = `t${++calls}`;
    return response.pipe(
      map(() => ({ token: name, expiresOnTimestamp: scheduler.now() + LIFETIME })),
    );
  };
  return createTokenRegistry<TokenKey>({
    acquire,
    classify: (error) =>
      error instanceof AuthenticationError
        ? { transient: error.transient, retryAfterMs: error.retryAfterMs }
        : { transient: false },
    scheduler,
    random: () => 0,
    // No retry floor: these timelines are in milliseconds of a 100 ms token.
    policy: { retryFloorMs: 0 },
  });
}

const tokens = map((t: { token: string }) => t.token);
const key: TokenKey = { id: "k" };

describe("token stream (marbles)", () => {
  it("refreshes at half-life while subscribed, one acquisition per refresh, and stops when the last subscriber leaves", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const response = cold("--a|");
      const registry = registryOver(scheduler, [response]);

      expectObservable(registry.stream(key).pipe(tokens), "^ 120ms !").toBe("--a 51ms b 51ms c", {
        a: "t1",
        b: "t2",
        c: "t3",
      });

      // The flush runs every scheduled action: a timer left behind would show up as a
      // fourth acquisition.
      expectSubscriptions(response.subscriptions).toBe(["^-!", "52ms ^-!", "104ms ^-!"]);
    });
  });

  it("shares one acquisition among subscribers that arrive while it is in flight, and replays the token to late ones", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const response = cold("--a|");
      const registry = registryOver(scheduler, [response]);

      expectObservable(registry.stream(key).pipe(tokens), "^ 30ms !").toBe("--a", { a: "t1" });
      expectObservable(registry.stream(key).pipe(tokens), "-^ 20ms !").toBe("--a", { a: "t1" });
      expectObservable(registry.stream(key).pipe(tokens), "10ms ^ 10ms !").toBe("10ms a", {
        a: "t1",
      });

      expectSubscriptions(response.subscriptions).toBe(["^-!"]);
    });
  });

  it("rides out a transient failure while the token is usable: no error, a retry after Retry-After, then the fresh token", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const ok = cold("--a|");
      const failing = cold("--#", undefined, serviceError(true));
      const recovered = cold("--a|");
      const registry = registryOver(scheduler, [ok, failing, recovered]);

      // t1 at 2, refresh at 52 fails at 54, retry 5 ms later (Retry-After) at 59, t3 at 61.
      expectObservable(registry.stream(key).pipe(tokens), "^ 70ms !").toBe("--a 58ms b", {
        a: "t1",
        b: "t3",
      });

      expectSubscriptions(ok.subscriptions).toBe(["^-!"]);
      expectSubscriptions(failing.subscriptions).toBe(["52ms ^-!"]);
      expectSubscriptions(recovered.subscriptions).toBe(["59ms ^-!"]);
    });
  });

  it("errors every subscriber with the service's typed error when no usable token can be had, after one request", () => {
    const scheduler = newScheduler();
    const refused = serviceError(false);
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const response = cold("--#", undefined, refused);
      const registry = registryOver(scheduler, [response]);

      expectObservable(registry.stream(key)).toBe("--#", undefined, refused);
      expectObservable(registry.stream(key)).toBe("--#", undefined, refused);

      expectSubscriptions(response.subscriptions).toBe(["^-!"]);
    });
  });

  it("lets a later subscriber try again after a permanent failure", () => {
    const scheduler = newScheduler();
    const refused = serviceError(false);
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold("--#", undefined, refused);
      const ok = cold("--a|");
      const registry = registryOver(scheduler, [failing, ok]);

      expectObservable(registry.stream(key)).toBe("--#", undefined, refused);
      expectObservable(registry.stream(key).pipe(tokens), "10ms ^ 5ms !").toBe("12ms a", {
        a: "t2",
      });

      expectSubscriptions(failing.subscriptions).toBe(["^-!"]);
      expectSubscriptions(ok.subscriptions).toBe(["10ms ^-!"]);
    });
  });

  it("cancels the acquisition when the last subscriber leaves before it answers", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const slow = cold("-----a|");
      const registry = registryOver(scheduler, [slow]);

      expectObservable(registry.stream(key), "^-!").toBe("");

      expectSubscriptions(slow.subscriptions).toBe(["^-!"]);
    });
  });

  it("completes every stream on close() and leaves nothing scheduled", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const response = cold("--a|");
      const registry = registryOver(scheduler, [response]);
      scheduler.schedule(() => void registry.close(), 10);

      expectObservable(registry.stream(key).pipe(tokens)).toBe("--a 7ms |", { a: "t1" });

      expectSubscriptions(response.subscriptions).toBe(["^-!"]);
    });
  });

  it("never replays a token that has entered its forced window", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      // The refresh at 52 hangs, so t1 (usable until 77) is the only token there is.
      const registry = registryOver(scheduler, [cold("--a|"), cold("-")]);

      const shared = registry.stream(key).pipe(tokens);
      expectObservable(shared, "^ 100ms !").toBe("--a", { a: "t1" });
      expectObservable(registry.stream(key).pipe(tokens), "80ms ^ 10ms !").toBe("");
      // Subscribing at 80 to the same (shared, replaying) stream finds only t1, now inside
      // its forced window: it is not replayed.
      expectObservable(shared, "80ms ^ 10ms !").toBe("");
    });
  });
});
