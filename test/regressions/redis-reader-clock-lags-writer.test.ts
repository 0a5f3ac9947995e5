/**
 * Regression (issue #18, "also check"): a stored token's times are the writer's wall clock.
 * A reader whose clock lagged the writer's by more than the forced window (30 s) took the
 * token for longer-lived than it was, and would serve it after it expired. The Redis store
 * now gives the entry's remaining life as Redis counts it (PTTL; for a published update, the
 * writer's remaining life at publication), on the reader's own clock. On a real
 * `redis-server`; the writer's clock is its `now` option, 60 s ahead.
 */
import { randomUUID } from "node:crypto";
import { filter, firstValueFrom, timeout } from "rxjs";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createRedisTokenStore } from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const AHEAD_MS = 60_000;
let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

test("a reader 60 s behind the writer sees the token's real remaining life, read or published", async () => {
  // Arrange: one credential's store in two processes; the writer's clock runs 60 s ahead.
  const options = {
    url: redis.url,
    clientSecret: "skew-secret-8c1a",
    credentialId: `cred-${randomUUID()}`,
    keyPrefix: `skew-${randomUUID()}`,
  };
  const writer = await createRedisTokenStore({ ...options, now: () => Date.now() + AHEAD_MS });
  const reader = await createRedisTokenStore(options);
  const key = "nocae.key";
  const published = firstValueFrom(
    reader.watch(key).pipe(
      filter((update) => update.entry !== undefined),
      timeout(5_000),
    ),
  );
  await reader.read(key); // the watch is active once a read returns

  // Act: the writer stores a token that lives 40 s more by its clock (refresh in 20 s).
  const writtenAt = Date.now() + AHEAD_MS;
  await writer.write(key, {
    token: "t",
    expiresOnTimestamp: writtenAt + 40_000,
    refreshAfterTimestamp: writtenAt + 20_000,
  });
  const read = await reader.read(key);
  const update = await published;

  // Assert: 40 s (not 100 s) left on the reader's clock, the refresh time moved alike.
  for (const entry of [read, update.entry]) {
    const left = (entry?.expiresOnTimestamp ?? 0) - Date.now();
    expect(left).toBeGreaterThan(35_000);
    expect(left).toBeLessThanOrEqual(40_000);
    expect((entry?.expiresOnTimestamp ?? 0) - (entry?.refreshAfterTimestamp ?? 0)).toBe(20_000);
  }
  await Promise.all([writer.close(), reader.close()]);
});
