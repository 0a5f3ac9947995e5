/**
 * Regression (issue #18, "also check"): the Redis store's write was unconditional, so a
 * holder whose request was slow could write an older token over a newer one another holder
 * had just written, and the fleet would refresh again early (or serve the shorter-lived one).
 * The write now compares the remaining lives in Redis, atomically with the SET. On a real
 * `redis-server`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createRedisTokenStore } from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

test("a token that expires sooner does not replace one that expires later; a later one does", async () => {
  // Arrange
  const store = await createRedisTokenStore({
    url: redis.url,
    clientSecret: "older-newer-secret-2f9d",
    credentialId: `cred-${randomUUID()}`,
    keyPrefix: `older-${randomUUID()}`,
  });
  const key = "nocae.key";
  const now = Date.now();
  await store.write(key, { token: "newer", expiresOnTimestamp: now + 3_600_000 });

  // Act: a slow holder writes the token it got earlier.
  await store.write(key, { token: "older", expiresOnTimestamp: now + 600_000 });

  // Assert: the newer one stays; a token living longer still replaces it.
  await expect(store.read(key)).resolves.toMatchObject({ token: "newer" });
  await store.write(key, { token: "newest", expiresOnTimestamp: now + 7_200_000 });
  await expect(store.read(key)).resolves.toMatchObject({ token: "newest" });
  await store.close();
});
