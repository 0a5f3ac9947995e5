/**
 * Regression (issue #18, "also check"): the default refresh lease (35 s) was shorter than
 * the slowest acquisition the credential allows (the authority metadata GET and the token
 * POST, each up to the 30 s request timeout), so while one process was still acquiring, its
 * lease lapsed and a second process acquired the same key at the same time. The default is
 * now 65 s. Virtual time: two registries (two processes) on one in-memory store, with the
 * default lease; tokens live 1 h, refreshed at 55 min less jitter.
 */
import { expect, it } from "vitest";
import { createTokenRegistry, type TokenKey } from "../../src/streams/index.js";
import { FakeSource, VirtualClock, classify, memorySharedCache } from "../streams/harness.js";

const key: TokenKey = { id: "a" };
const MINUTE = 60_000;

it("a refresh that takes 55 s (two slow requests) is not run a second time by another process", async () => {
  // Arrange: p0 refreshes first (at 52.5 min), p1 is due 3 s later (jitter 0.5 and 0.49).
  const clock = new VirtualClock();
  const cache = memorySharedCache(clock);
  const processes = [0.5, 0.49].map((jitter, index) => {
    const source = new FakeSource(clock);
    const registry = createTokenRegistry<TokenKey>({
      acquire: async (k, signal) => {
        const token = await source.acquire(k, signal);
        return { ...token, token: `p${index}:${token.token}` };
      },
      classify,
      scheduler: clock,
      random: () => jitter,
      sharedCache: cache,
    });
    return { source, registry };
  });
  const [p0, p1] = processes as [(typeof processes)[0], (typeof processes)[0]];
  const s0 = p0.registry.stream(key).subscribe();
  const seen: string[] = [];
  const s1 = p1.registry.stream(key).subscribe((t) => seen.push(t.token));
  await clock.advance(1_000);
  expect(seen).toEqual(["p0:a#1"]);

  // Act: p0's refresh takes 55 s.
  p0.source.latencyMs = 55_000;
  await clock.advance(55 * MINUTE);

  // Assert: p1 waited for p0's token instead of acquiring while p0 still was.
  expect(p0.source.requests).toHaveLength(2);
  expect(p1.source.requests).toHaveLength(0);
  expect(seen).toEqual(["p0:a#1", "p0:a#2"]);
  s0.unsubscribe();
  s1.unsubscribe();
});
