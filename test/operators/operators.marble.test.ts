import { describe, expect, it } from "vitest";
import { defer, map, of, Subject, type Observable } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import {
  MAX_TIMER_DELAY_MS,
  clampDelay,
  dropStale,
  refreshBeforeExpiry,
  retryWithBackoff,
  rotateOnNewValue,
  timerAt,
} from "../../src/operators/index.js";

const newScheduler = (): TestScheduler =>
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe("clampDelay", () => {
  it("keeps delays inside what setTimeout honours", () => {
    expect(clampDelay(-5)).toBe(0);
    expect(clampDelay(Number.NaN)).toBe(0);
    expect(clampDelay(1_000)).toBe(1_000);
    expect(clampDelay(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_DELAY_MS);
    expect(MAX_TIMER_DELAY_MS).toBe(2_147_483_647);
  });
});

describe("timerAt", () => {
  it("fires at the given time, and at once when it has passed", () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      expectObservable(timerAt(5, scheduler)).toBe("-----(a|)", { a: 0 });
      expectObservable(timerAt(-5, scheduler)).toBe("(a|)", { a: 0 });
    });
  });

  it("reaches a time beyond the timer maximum without firing early", () => {
    const scheduler = newScheduler();
    scheduler.maxFrames = Number.POSITIVE_INFINITY;
    const at = MAX_TIMER_DELAY_MS * 2 + 10;
    const fired: number[] = [];
    timerAt(at, scheduler).subscribe(() => fired.push(scheduler.now()));
    scheduler.flush();
    expect(fired).toEqual([at]);
  });
});

describe("refreshBeforeExpiry", () => {
  it("re-fetches at each value's refresh time (one subscription per fetch)", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      // Each fetch takes 2 frames and yields a token whose refresh time is 10 frames later.
      const fetch = cold<number>("--(a|)", { a: 0 });
      const tokens = fetch.pipe(map(() => scheduler.now() + 10));
      // A 1-frame floor: this timeline is in frames (the default floor is 1 s).
      const out = tokens.pipe(
        refreshBeforeExpiry({ refreshAt: (at) => at, minIntervalMs: 1, scheduler }),
      );
      expectObservable(out, "^ 29ms !").toBe("--a-----------b-----------c---", {
        a: 12,
        b: 24,
        c: 36,
      });
      expectSubscriptions(fetch.subscriptions).toBe([
        "^-!",
        "------------^-!",
        "------------------------^-!",
      ]);
    });
  });

  it("completes when a fetch yields nothing, and passes errors through", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const empty = cold<number>("--|");
      expectObservable(empty.pipe(refreshBeforeExpiry({ refreshAt: () => 0, scheduler }))).toBe(
        "--|",
      );
      const failing = cold<number>("--#", undefined, new Error("down"));
      expectObservable(failing.pipe(refreshBeforeExpiry({ refreshAt: () => 0, scheduler }))).toBe(
        "--#",
        undefined,
        new Error("down"),
      );
    });
  });
});

describe("retryWithBackoff", () => {
  const transient = () => ({ transient: true });

  it("retries transient errors with full-jitter exponential backoff", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>("-#");
      const out = source.pipe(
        retryWithBackoff({
          classify: transient,
          baseMs: 4,
          capMs: 10,
          scheduler,
          random: () => 0.5,
        }),
      );
      // Delays: 0.5*4=2, 0.5*8=4, 0.5*10=5 (capped), 5 ...
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

  it("honours a server-given Retry-After instead of the backoff", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>("-#");
      const out = source.pipe(
        retryWithBackoff({
          classify: () => ({ transient: true, retryAfterMs: 7 }),
          baseMs: 1,
          capMs: 1,
          scheduler,
          random: () => 0,
        }),
      );
      expectObservable(out, "^ 16ms !").toBe("");
      expectSubscriptions(source.subscriptions).toBe(["^!", "--------^!", "----------------^!"]);
    });
  });

  it("never schedules a retry at or past the deadline: the error goes downstream", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>("-#", undefined, new Error("busy"));
      const out = source.pipe(
        retryWithBackoff({
          classify: () => ({ transient: true, retryAfterMs: 5 }),
          baseMs: 1,
          capMs: 1,
          deadline: () => 12,
          scheduler,
        }),
      );
      // Failures at 1 (retry at 6) and 7 (12 is the deadline: give up).
      expectObservable(out).toBe("-------#", undefined, new Error("busy"));
      expectSubscriptions(source.subscriptions).toBe(["^!", "------^!"]);
    });
  });

  it("does not retry permanent errors, and resets the backoff after a success", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const permanent = cold<string>("-#", undefined, new Error("invalid_client"));
      expectObservable(
        permanent.pipe(
          retryWithBackoff({
            classify: () => ({ transient: false }),
            baseMs: 1,
            capMs: 1,
            scheduler,
          }),
        ),
      ).toBe("-#", undefined, new Error("invalid_client"));
      expectSubscriptions(permanent.subscriptions).toBe(["^!"]);
    });
  });
});

describe("dropStale", () => {
  it("drops values whose deadline has passed at delivery", () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      // Values carry their deadline.
      const source = cold<number>("a-b---c", { a: 5, b: 2, c: 100 });
      expectObservable(source.pipe(dropStale({ deadline: (d) => d, scheduler }))).toBe("a-----c", {
        a: 5,
        c: 100,
      });
    });
  });
});

describe("rotateOnNewValue", () => {
  it("keeps the old connection until the new one is ready (make-before-break)", () => {
    const scheduler = newScheduler();
    scheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const tokens = hot<string>("a-------b-------|");
      const connections: Record<string, ReturnType<typeof cold<string>>> = {
        a: cold<string>("--x---x---x---x---x|"),
        b: cold<string>("---y---y---|"),
      };
      const out = tokens.pipe(rotateOnNewValue((t) => connections[t]!));
      expectObservable(out).toBe("--x---x---xy---y---|");
      expectSubscriptions(connections.a!.subscriptions).toBe("^----------!");
      expectSubscriptions(connections.b!.subscriptions).toBe("--------^----------!");
    });
  });

  it("replaces a candidate that is not ready yet with a newer one", () => {
    const scheduler = newScheduler();
    scheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const tokens = hot<string>("a--b|");
      const a = cold<string>("-----x|");
      const b = cold<string>("--y|");
      const open = (t: string): Observable<string> => (t === "a" ? a : b);
      expectObservable(tokens.pipe(rotateOnNewValue(open))).toBe("-----y|");
      expectSubscriptions(a.subscriptions).toBe("^--!");
      expectSubscriptions(b.subscriptions).toBe("---^--!");
    });
  });

  it("errors when a connection errors, and works with synchronous connections", () => {
    const errors: unknown[] = [];
    const values: number[] = [];
    const source = new Subject<number>();
    source
      .pipe(
        rotateOnNewValue((n) =>
          defer(() =>
            n < 0
              ? of(n).pipe(
                  map(() => {
                    throw new Error("x");
                  }),
                )
              : of(n * 10),
          ),
        ),
      )
      .subscribe({ next: (v) => values.push(v), error: (e: unknown) => errors.push(e) });
    source.next(1);
    source.next(2);
    source.next(-1);
    expect(values).toEqual([10, 20]);
    expect(errors).toHaveLength(1);
  });
});
