/**
 * Regression (issue #18, item 2): the Redis store's `watch` sent its SUBSCRIBE on a new
 * connection and never waited for it, so a process that subscribed, read the store (a miss)
 * and then waited for the update missed a write made right after its read; and a lease given
 * back was not announced, so nobody waiting for that holder heard of it. On a real
 * `redis-server`.
 */
import { randomUUID } from "node:crypto";
import { firstValueFrom, filter, timeout } from "rxjs";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createRedisTokenStore, type RedisTokenStore } from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Two stores of one credential, as two processes of a fleet hold them. */
async function twoProcesses(): Promise<[RedisTokenStore, RedisTokenStore]> {
  const options = {
    url: redis.url,
    clientSecret: "watch-secret-5e0c",
    credentialId: `cred-${randomUUID()}`,
    keyPrefix: `watch-${randomUUID()}`,
  };
  return Promise.all([createRedisTokenStore(options), createRedisTokenStore(options)]);
}

test("a write made right after a read that followed watch() reaches the watcher", async () => {
  // Arrange: the waiter watches, then reads (a miss), as the engine does before waiting.
  const [waiter, writer] = await twoProcesses();
  const key = "nocae.key-1";
  const update = firstValueFrom(waiter.watch(key).pipe(timeout(5_000)));
  await expect(waiter.read(key)).resolves.toBeUndefined();

  // Act: another process writes at once.
  await writer.write(key, { token: "t-1", expiresOnTimestamp: Date.now() + 3_600_000 });

  // Assert: the update arrives (before the fix the SUBSCRIBE was not active yet: none came).
  await expect(update).resolves.toMatchObject({ key, entry: { token: "t-1" } });
  await Promise.all([waiter.close(), writer.close()]);
});

test("a lease given back is announced to the watchers; a lapsed one taken over is not", async () => {
  // Arrange
  const [waiter, holder] = await twoProcesses();
  const key = "nocae.key-2";
  const seen: unknown[] = [];
  const subscription = waiter.watch(key).subscribe((update) => seen.push(update));
  await waiter.read(key); // the watch is active once a read returns
  const lease = await holder.lease(key, 60_000);
  expect(lease).not.toBeNull();

  // Act
  const released = firstValueFrom(
    waiter.watch(key).pipe(
      filter((update) => update.released === true),
      timeout(5_000),
    ),
  );
  await lease?.release();

  // Assert: one release, with no entry (the holder wrote no token).
  await expect(released).resolves.toEqual({ key, entry: undefined, released: true });
  expect(seen).toEqual([{ key, entry: undefined, released: true }]);

  // A lease that lapsed and was taken by another holder is not released (nor announced) by
  // its first holder.
  const short = await holder.lease(key, 50);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const taken = await waiter.lease(key, 60_000);
  expect(taken).not.toBeNull();
  await short?.release();
  await expect(holder.lease(key, 60_000)).resolves.toBeNull();
  await taken?.release();
  // Updates arrive in order: once this write is seen, every earlier message has been.
  const flushed = firstValueFrom(
    waiter.watch(key).pipe(
      filter((update) => update.entry !== undefined),
      timeout(5_000),
    ),
  );
  await holder.write(key, { token: "t-2", expiresOnTimestamp: Date.now() + 3_600_000 });
  await flushed;
  expect(seen).toEqual([
    { key, entry: undefined, released: true },
    { key, entry: undefined, released: true },
    { key, entry: expect.objectContaining({ token: "t-2" }) },
  ]);
  subscription.unsubscribe();
  await Promise.all([waiter.close(), holder.close()]);
});
