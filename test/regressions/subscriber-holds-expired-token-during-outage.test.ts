/**
 * Regression: during an outage, once a short-lived token left its usable life the engine
 * kept retrying for `retryWithoutTokenMs` (20 s) while a `token$` subscriber silently held
 * that token past its expiry (fast-check's counterexample: a 1 s token, an outage from 1 ms,
 * 2 ms latency: "token 1 still held at its expiry 1002"). Now, while subscribers hold a
 * token, retries without a usable token stop at its expiry, and they get the typed error.
 */
import { describe, expect, it } from "vitest";
import { createTokenRegistry, type TokenKey } from "../../src/streams/index.js";
import { FakeError, FakeSource, VirtualClock, classify } from "../streams/harness.js";

describe("an outage outliving a short token", () => {
  it("errors the subscriber no later than the held token's expiry, after retrying until then", async () => {
    const clock = new VirtualClock();
    const source = new FakeSource(clock, 2);
    source.fallback = { kind: "token", lifetimeMs: 1_000 };
    const registry = createTokenRegistry({
      acquire: source.acquire,
      classify,
      scheduler: clock,
      random: () => 0.5,
    });
    const key: TokenKey = { id: "k" };
    const received: { at: number; expiresOn: number }[] = [];
    let failed: { at: number; error: unknown } | undefined;
    registry.stream(key).subscribe({
      next: (token) => received.push({ at: clock.now(), expiresOn: token.expiresOnTimestamp }),
      error: (error: unknown) => {
        failed = { at: clock.now(), error };
      },
    });
    await clock.advance(2);
    expect(received).toHaveLength(1);
    const expiry = received[0]!.expiresOn;

    source.fallback = { kind: "transient" };
    await clock.advance(5_000);

    expect(failed).toBeDefined();
    expect(failed!.error).toBeInstanceOf(FakeError);
    expect(failed!.at).toBeLessThanOrEqual(expiry);
    // It did keep trying while the token could still be used.
    expect(source.requests.filter((r) => r.at > 2).length).toBeGreaterThan(1);
    expect(received).toHaveLength(1);
    await registry.close();
  });
});
