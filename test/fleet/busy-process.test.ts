/**
 * A fleet process on a loaded machine: its event loop is blocked for longer than the Redis
 * store's command deadline while the reply is already on its way. The store must take the
 * reply rather than report Redis unavailable (which would send every key of the process to
 * Entra ID on its own, the storm that stalled the full-size fleet benchmark). A Redis that
 * truly does not answer is still reported, within a bounded time.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  createRedisTokenStore,
  credentialIdOf,
  isTokenStoreUnavailableError,
  type RedisTokenStore,
  type StoreLogger,
} from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const COMMAND_TIMEOUT_MS = 200;
let redis: RunningRedis;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Keeps this thread busy for `ms`, as a process starting 100 token streams on 2 cores is. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer, socket or Promise callback can run meanwhile
  }
}

async function open(): Promise<{ store: RedisTokenStore; lines: string[] }> {
  const lines: string[] = [];
  const logger: StoreLogger = { info: (m) => lines.push(m), warning: (m) => lines.push(m) };
  const store = await createRedisTokenStore({
    url: redis.url,
    clientSecret: "busy-process-secret",
    credentialId: credentialIdOf({ authorityHost: "https://login.example", clientId: "busy" }),
    keyPrefix: `busy-${randomUUID()}`,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    logger,
  });
  return { store, lines };
}

test("a process blocked past the command deadline still takes the reply that arrived meanwhile; Redis stays available", async () => {
  // Arrange
  const { store, lines } = await open();
  const entry = { token: "t-1", expiresOnTimestamp: Date.now() + 60_000 };
  await store.write("k", entry);

  // Act: 100 reads sent, then the loop is blocked 3 × the deadline.
  const reads = Array.from({ length: 100 }, () => store.read("k"));
  blockEventLoop(3 * COMMAND_TIMEOUT_MS);
  const results = await Promise.allSettled(reads);

  // Assert
  expect(results.every((r) => r.status === "fulfilled" && r.value?.token === "t-1")).toBe(true);
  expect(store.available).toBe(true);
  expect(lines.filter((line) => line.includes("unavailable"))).toEqual([]);
  await store.close();
});

test("a Redis that does not answer is still reported unavailable, even from a busy process", async () => {
  // Arrange
  const { store } = await open();
  redis.pause();
  try {
    // Act
    const read = store.read("k");
    blockEventLoop(COMMAND_TIMEOUT_MS);
    const outcome = await read.then(
      () => "answered",
      (error: unknown) => (isTokenStoreUnavailableError(error) ? "unavailable" : String(error)),
    );

    // Assert
    expect(outcome).toBe("unavailable");
    expect(store.available).toBe(false);
  } finally {
    redis.resume();
    await store.close();
  }
});
