/**
 * Regression (issue #18, item 5): `refreshBeforeExpiry` re-subscribed at `refreshAt(value)`
 * with no floor, so a refresh time already past (the TSDoc's own `expiresOnTimestamp -
 * 300_000` for a token shorter than 5 minutes, or a source handing back its cached token
 * near expiry, as `getToken` does) re-fetched in a loop: 896 source subscriptions in one
 * second. Now the next fetch is never sooner than `minIntervalMs` (1 s) after a value, and
 * that floor doubles (up to `maxIntervalMs`, 30 s) while the same value keeps coming back.
 * Virtual time: each fetch takes 1 ms.
 */
import { defer, map, timer, VirtualAction, VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import { refreshBeforeExpiry } from "../../src/operators/index.js";

interface Token {
  readonly token: string;
  readonly expiresOnTimestamp: number;
}

/** Runs `refreshBeforeExpiry` over `fetch` for `ms` of virtual time; returns when it subscribed. */
function run(
  ms: number,
  fetch: (scheduler: VirtualTimeScheduler) => Token,
  options: { readonly isSame?: (a: Token, b: Token) => boolean } = {},
): number[] {
  const scheduler = new VirtualTimeScheduler(VirtualAction, ms);
  const subscribed: number[] = [];
  const source = defer(() => {
    subscribed.push(scheduler.now());
    return timer(1, scheduler).pipe(map(() => fetch(scheduler)));
  });
  const subscription = source
    .pipe(
      refreshBeforeExpiry({
        // The README's formula: 5 minutes before expiry.
        refreshAt: (t) => t.expiresOnTimestamp - 300_000,
        scheduler,
        ...options,
      }),
    )
    .subscribe();
  scheduler.flush();
  subscription.unsubscribe();
  return subscribed;
}

describe("refreshBeforeExpiry with a refresh time already past", () => {
  it("a source that hands back its cached 4-minute token: backs off from 1 s to 30 s", () => {
    const cached: Token = { token: "cached", expiresOnTimestamp: 240_000 };

    const subscribed = run(60_000, () => cached);

    // The old code: one subscription per millisecond, about 30,000 in this minute.
    expect(subscribed).toEqual([0, 1_001, 3_002, 7_003, 15_004, 31_005]);
  });

  it("a source that issues a fresh short token each time: one fetch a second at most", () => {
    let serial = 0;

    const subscribed = run(10_000, (scheduler) => ({
      token: `t${++serial}`,
      expiresOnTimestamp: scheduler.now() + 240_000,
    }));

    expect(subscribed).toHaveLength(10);
    subscribed.slice(1).forEach((at, i) => expect(at - subscribed[i]!).toBe(1_001));
  });

  it("recognises a cached token by `isSame`, and a new one ends the backoff", () => {
    let calls = 0;
    // Equal tokens in new objects (as @azure/identity returns them) for 3 fetches, then new ones.
    const subscribed = run(
      20_000,
      () => ({ token: ++calls <= 3 ? "same" : `new${calls}`, expiresOnTimestamp: 240_000 }),
      { isSame: (a, b) => a.token === b.token },
    );

    expect(subscribed.slice(0, 5)).toEqual([0, 1_001, 3_002, 7_003, 8_004]);
  });

  it("a refresh time in the future is kept exactly", () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, 1_300_000);
    const subscribed: number[] = [];
    defer(() => {
      subscribed.push(scheduler.now());
      return timer(1, scheduler).pipe(map(() => scheduler.now() + 600_000));
    })
      .pipe(refreshBeforeExpiry({ refreshAt: (at) => at, scheduler }))
      .subscribe();
    scheduler.flush();

    expect(subscribed).toEqual([0, 600_001, 1_200_002]);
  });
});
