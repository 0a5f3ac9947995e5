/**
 * Regression (issue #18, item 2), on virtual time: a registry waiting for another holder's
 * refresh lease woke only on a fresh token written by that holder, or at its own deadline.
 * A lease given back without a token (the holder's caller aborted) left it asleep until then,
 * and so did a token whose update never reached it (published before its watch was active,
 * or sealed under a secret it does not have). Now it wakes on the release, and re-reads the
 * cache every `leasePollMs` while it waits.
 *
 * Two registries stand for two processes of a fleet on one in-memory store (the store's
 * clock is the virtual one). Requests take 100 ms; the lease lasts 10 minutes.
 */
import { expect, it } from "vitest";
import { createTokenRegistry, type TokenKey, type TokenRegistry } from "../../src/streams/index.js";
import { FakeSource, VirtualClock, classify, memorySharedCache } from "../streams/harness.js";

const key: TokenKey = { id: "a" };
const LEASE_MS = 600_000;

function fleet(options: { readonly watch: boolean; readonly leasePollMs: number }) {
  const clock = new VirtualClock();
  // Without a watch, no update reaches the registry, as when it was lost on the way.
  const cache = memorySharedCache(clock, { watch: options.watch });
  const processes = ["p0", "p1"].map((name) => {
    const source = new FakeSource(clock);
    const registry: TokenRegistry<TokenKey> = createTokenRegistry<TokenKey>({
      acquire: async (k, signal) => {
        const token = await source.acquire(k, signal);
        return { ...token, token: `${name}:${token.token}` };
      },
      classify,
      scheduler: clock,
      random: () => 0,
      sharedCache: cache,
      leaseTtlMs: LEASE_MS,
      leasePollMs: options.leasePollMs,
      // Long enough that only a wake-up, never the deadline, can end the wait.
      policy: { retryWithoutTokenMs: LEASE_MS },
    });
    return { source, registry };
  });
  return { clock, processes: processes as [(typeof processes)[0], (typeof processes)[0]] };
}

it("a waiter acquires as soon as the holder's caller aborts (the release wakes it, not a poll)", async () => {
  // Arrange: p0 takes the lease and its request hangs; p1 waits for it. The poll is longer
  // than the whole test, so only the release can wake p1.
  const { clock, processes } = fleet({ watch: true, leasePollMs: LEASE_MS });
  const [p0, p1] = processes;
  p0.source.latencyMs = 10 * LEASE_MS;
  const aborter = new AbortController();
  const first = p0.registry.get(key, { signal: aborter.signal });
  first.catch(() => undefined);
  await clock.advance(1_000);
  const second = p1.registry.get(key);
  await clock.advance(1_000);
  expect(p1.source.requests).toHaveLength(0);

  // Act: p0's caller aborts at 2 s; its lease is given back without a token.
  aborter.abort();
  await clock.advance(1_000);

  // Assert: p1 asked at once (2 s), and got its token 100 ms later.
  await expect(first).rejects.toThrow(/aborted/);
  expect(p1.source.requests.map((r) => r.at)).toEqual([2_000]);
  await expect(second).resolves.toMatchObject({ token: "p1:a#1" });
});

it("a waiter whose watch delivers nothing takes the holder's token at its next poll, with no request", async () => {
  // Arrange: no update reaches either registry; p0's request takes 2.5 s.
  const { clock, processes } = fleet({ watch: false, leasePollMs: 1_000 });
  const [p0, p1] = processes;
  p0.source.latencyMs = 2_500;
  const got: { at: number; token: string }[] = [];
  const first = p0.registry.get(key);
  void p1.registry.get(key).then((t) => got.push({ at: clock.now(), token: t.token }));

  // Act
  await clock.advance(2_000);
  expect(p1.source.requests).toHaveLength(0);
  await clock.advance(2_000);

  // Assert: p1 read p0's token at the poll after it was written (3 s), not after 10 minutes.
  await expect(first).resolves.toMatchObject({ token: "p0:a#1" });
  expect(got).toEqual([{ at: 3_000, token: "p0:a#1" }]);
  expect(p1.source.requests).toHaveLength(0);
});
