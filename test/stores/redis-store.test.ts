import { createClient } from "redis";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import {
  createEntryCipher,
  createRedisTokenStore,
  credentialIdOf,
  isTokenStoreUnavailableError,
  storeKeyOf,
  type RedisTokenStore,
  type RedisTokenStoreOptions,
  type StoreLogger,
} from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const SECRET = "s3cr3t~Value.With-Symbols_0123456789";
const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "11111111-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://storage.azure.com/.default"],
};
const CREDENTIAL = credentialIdOf(fields);
const KEY = storeKeyOf(fields);

function capture(): StoreLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warning: (m) => lines.push(m) };
}

let redis: RunningRedis;
let raw: ReturnType<typeof createClient>;
const stores: RedisTokenStore[] = [];
let prefixCounter = 0;
let prefix = "";

beforeAll(async () => {
  redis = await startRedis();
  raw = createClient({ url: redis.url });
  raw.on("error", () => undefined);
  await raw.connect();
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  raw?.destroy();
  await redis?.stop();
});

async function open(options: Partial<RedisTokenStoreOptions> = {}): Promise<RedisTokenStore> {
  const store = await createRedisTokenStore({
    url: redis.url,
    clientSecret: SECRET,
    credentialId: CREDENTIAL,
    keyPrefix: prefix,
    commandTimeoutMs: 200,
    reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
    ...options,
  });
  stores.push(store);
  return store;
}

function entry(token: string, lifetimeMs = 3_600_000) {
  return { token, expiresOnTimestamp: Date.now() + lifetimeMs };
}

describe("createRedisTokenStore", () => {
  test("round-trips a token, sealed at rest, expiring in Redis with the token", async () => {
    prefix = `t${++prefixCounter}`;
    const a = await open();
    const b = await open();
    const written = entry("eyJ0eXAiOiJKV1QifQ.payload.sig");

    await a.write(KEY, written);

    expect(await b.read(KEY)).toEqual(written);
    const stored = await raw.get(`${prefix}:v1:token:${KEY}`);
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain("eyJ0eXAi");
    const ttl = await raw.pTTL(`${prefix}:v1:token:${KEY}`);
    expect(ttl).toBeGreaterThan(3_590_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  test("rejects values sealed with another secret, tampered or moved, with a log line", async () => {
    prefix = `t${++prefixCounter}`;
    const logger = capture();
    const store = await open({ logger });
    const other = storeKeyOf({ ...fields, scopes: ["other"] });
    const foreign = createEntryCipher("another secret").seal(KEY, entry("forged"));
    const moved = createEntryCipher(SECRET).seal(other, entry("moved"));

    await raw.set(`${prefix}:v1:token:${KEY}`, foreign);
    const fromForeign = await store.read(KEY);
    await raw.set(`${prefix}:v1:token:${KEY}`, moved);
    const fromMoved = await store.read(KEY);
    await raw.set(`${prefix}:v1:token:${KEY}`, moved.slice(0, -10));
    const fromTruncated = await store.read(KEY);

    expect([fromForeign, fromMoved, fromTruncated]).toEqual([undefined, undefined, undefined]);
    expect(logger.lines.filter((l) => /ignored/.test(l))).toHaveLength(3);
  });

  test("a lease is exclusive and a dead holder blocks the others only until its TTL", async () => {
    prefix = `t${++prefixCounter}`;
    const holder = await open();
    const other = await open();

    const lease = await holder.lease(KEY, 300);
    const blocked = await other.lease(KEY, 300);
    const ttl = await raw.pTTL(`${prefix}:v1:lease:${KEY}`);
    await holder.close(); // dies without releasing
    const start = Date.now();
    const taken = await vi.waitFor(
      async () => {
        const next = await other.lease(KEY, 300);
        if (next === null) throw new Error("still leased");
        return next;
      },
      { timeout: 2_000, interval: 20 },
    );

    expect(lease).not.toBeNull();
    expect(blocked).toBeNull();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    expect(Date.now() - start).toBeLessThan(1_000);
    expect(taken).not.toBeNull();
  });

  test("release frees the lease, but only for its holder", async () => {
    prefix = `t${++prefixCounter}`;
    const a = await open();
    const b = await open();

    const first = await a.lease(KEY, 10_000);
    await first!.release();
    const second = await b.lease(KEY, 10_000);
    await first!.release(); // a stale holder must not free b's lease
    const third = await a.lease(KEY, 10_000);

    expect(second).not.toBeNull();
    expect(third).toBeNull();
  });

  test("pub/sub tells another store instance of each write and delete at once", async () => {
    prefix = `t${++prefixCounter}`;
    const writer = await open();
    const watcher = await open();
    const seen = firstValueFrom(watcher.watch(KEY).pipe(take(2), toArray()));
    // SUBSCRIBE runs on its own connection: wait until Redis counts it.
    await vi.waitFor(async () => {
      const counts = await raw.pubSubNumSub(`${prefix}:v1:updates:${CREDENTIAL}`);
      if (Object.values(counts)[0] !== 1) throw new Error("not subscribed yet");
    });
    const written = entry("new-token");

    await writer.write(KEY, written);
    await writer.delete(KEY);

    expect(await seen).toEqual([
      { key: KEY, entry: written },
      { key: KEY, entry: undefined },
    ]);
  });

  test("a forged or garbage update message is ignored with a log line", async () => {
    prefix = `t${++prefixCounter}`;
    const logger = capture();
    const watcher = await open({ logger });
    const writer = await open();
    const seen = firstValueFrom(watcher.watch().pipe(take(1)));
    const channel = `${prefix}:v1:updates:${CREDENTIAL}`;
    await vi.waitFor(async () => {
      if (Object.values(await raw.pubSubNumSub(channel))[0] !== 1) throw new Error("not yet");
    });

    await raw.publish(channel, "garbage");
    const forged = createEntryCipher("attacker").seal(KEY, entry("forged"));
    await raw.publish(channel, JSON.stringify({ k: KEY, v: forged }));
    await writer.write(KEY, entry("genuine"));

    expect((await seen).entry?.token).toBe("genuine");
    expect(logger.lines.filter((l) => /ignored/.test(l))).toHaveLength(2);
  });

  test("Redis killed mid-run: operations fail fast as unavailable, then work again after it restarts", async () => {
    prefix = `t${++prefixCounter}`;
    const logger = capture();
    const store = await open({ logger });
    await store.write(KEY, entry("before"));

    await redis.kill();
    const start = Date.now();
    const failures = await Promise.all([
      store.read(KEY).catch((e: unknown) => e),
      store.write(KEY, entry("during")).catch((e: unknown) => e),
      store.lease(KEY, 1_000).catch((e: unknown) => e),
    ]);
    const elapsed = Date.now() - start;
    await redis.restart();
    await raw.connect().catch(() => undefined);
    const after = await vi.waitFor(
      async () => {
        await store.write(KEY, entry("after"));
        return store.read(KEY);
      },
      { timeout: 5_000, interval: 50 },
    );

    expect(failures.every(isTokenStoreUnavailableError)).toBe(true);
    expect(elapsed).toBeLessThan(500);
    expect(after?.token).toBe("after");
    expect(store.available).toBe(true);
    expect(logger.lines.some((l) => /unavailable/.test(l))).toBe(true);
    expect(logger.lines.some((l) => /available again/.test(l))).toBe(true);
  });

  test("Redis too slow: a command gives up after commandTimeoutMs as unavailable", async () => {
    prefix = `t${++prefixCounter}`;
    const store = await open({ commandTimeoutMs: 150 });
    await store.write(KEY, entry("t"));

    redis.pause();
    const start = Date.now();
    const failure = await store.read(KEY).catch((e: unknown) => e);
    const elapsed = Date.now() - start;
    redis.resume();
    const after = await vi.waitFor(() => store.read(KEY), { timeout: 5_000, interval: 50 });

    expect(isTokenStoreUnavailableError(failure)).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1_000);
    expect(after?.token).toBe("t");
  });

  test("a store created while Redis is down returns at once as unavailable and connects later", async () => {
    prefix = `t${++prefixCounter}`;
    const down = await startRedis();
    await down.kill();
    try {
      const start = Date.now();
      const store = await open({ url: down.url, connectTimeoutMs: 200 });
      const elapsed = Date.now() - start;
      const failure = await store.read(KEY).catch((e: unknown) => e);
      await down.restart();
      await vi.waitFor(() => store.write(KEY, entry("late")), { timeout: 5_000, interval: 50 });

      expect(elapsed).toBeLessThan(1_000);
      expect(isTokenStoreUnavailableError(failure)).toBe(true);
      expect((await store.read(KEY))?.token).toBe("late");
    } finally {
      await down.stop();
    }
  });
});
