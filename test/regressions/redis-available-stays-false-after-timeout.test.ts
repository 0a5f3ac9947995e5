/**
 * Regression (issue #18, item 7): one command that timed out (a frozen or overloaded Redis)
 * set `RedisTokenStore.available` to `false`, and only a reconnect set it back. The
 * connection never dropped, so `available` stayed `false` while every later command
 * succeeded, and the "available again" log line never came. Now the first reply after a
 * failure marks the store available and logs it. Against a real redis-server, frozen with
 * SIGSTOP and thawed with SIGCONT.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createRedisTokenStore,
  credentialIdOf,
  isTokenStoreUnavailableError,
  storeKeyOf,
  type StoreLogger,
} from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "11111111-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://storage.azure.com/.default"],
};
let redis: RunningRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

it("the first successful command after a timed-out one sets available and logs the recovery", async () => {
  const lines: string[] = [];
  const logger: StoreLogger = { info: (m) => lines.push(m), warning: (m) => lines.push(m) };
  const store = await createRedisTokenStore({
    url: redis.url,
    clientSecret: "redis-regression-secret",
    credentialId: credentialIdOf(fields),
    commandTimeoutMs: 150,
    logger,
  });
  const key = storeKeyOf(fields);
  try {
    await store.write(key, { token: "t", expiresOnTimestamp: Date.now() + 3_600_000 });
    redis.pause();
    const failure = await store.read(key).catch((e: unknown) => e);
    redis.resume();
    expect(isTokenStoreUnavailableError(failure)).toBe(true);
    expect(store.available).toBe(false);

    const after = await store.read(key);

    expect(after?.token).toBe("t");
    expect(store.available).toBe(true);
    expect(lines.filter((l) => /unavailable/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /available again/.test(l))).toHaveLength(1);
  } finally {
    redis.resume();
    await store.close();
  }
});
