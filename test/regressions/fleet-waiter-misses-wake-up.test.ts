/**
 * Regression (issue #18, item 2): a fleet process waiting for another process's refresh
 * lease slept until its own deadline (20 s by default) whenever the wake-up it waited for
 * never came: the holder gave the lease back without a token (its caller aborted, it closed
 * during a rolling deploy), the holder's update was published before the waiter's SUBSCRIBE
 * was active, or the update was sealed under a secret the waiter does not have.
 *
 * Real processes (`test/fleet/fixtures/credential-child.ts`) on a real `redis-server`
 * against the HTTPS emulator. The waiter gets a 60 s lease and a 60 s deadline, so on the old
 * code it could not have its token before the test's bound; each case first proves (with
 * Redis MONITOR) that the waiter found the lease taken and so is waiting, then lets the
 * holder go.
 */
import { randomUUID } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import { once } from "node:events";
import { createClient } from "redis";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { createRedisTokenStore, credentialIdOf, storeKeyOf } from "../../src/stores/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import type { ChildConfig } from "../fleet/fixtures/credential-child.js";
import { startChild, type FleetChild } from "../fleet/support/children.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const tenantId = "f1800000-0000-4000-8000-000000000018";
const secret = "wake-up-secret-4d2a";
const scope = "https://storage.azure.com/.default";
/** Far beyond the test's bound: on the old code the waiter's token came only after this. */
const LONG_WAIT_MS = 60_000;

let emulator: EntraEmulator;
let redis: RunningRedis;
let monitor: ReturnType<typeof createClient>;
/** Every `SET … NX` on a lease key Redis executed, in order: `[lease key, holder]`. */
const leaseAttempts: string[][] = [];
const running: FleetChild[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startEntraEmulator(), startRedis()]);
  monitor = createClient({ url: redis.url });
  await monitor.connect();
  await monitor.monitor((line: string) => {
    // `1700000000.123456 [0 127.0.0.1:5555] "SET" "<key>" "<holder>" "NX" "PX" "60000"`
    const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1] ?? "");
    if (args[0] === "SET" && args[1]?.includes(":lease:") === true && args.includes("NX")) {
      leaseAttempts.push([args[1], args[2] ?? ""]);
    }
  });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((child) => child.kill()));
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  emulator.clearFaults();
});
afterAll(async () => {
  monitor?.destroy();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

/** A fresh app registration (so counts are per test) and the waiter's config. */
function app(): ChildConfig {
  const clientId = `wake-${randomUUID()}`;
  emulator.registerApplication({ clientId, clientSecret: secret, tokenLifetimeSeconds: 3_600 });
  return {
    mode: "get",
    authorityHost: emulator.authorityHost,
    caFile: emulator.caFile,
    tenantId,
    clientId,
    clientSecret: secret,
    scopes: [scope],
    redisUrl: redis.url,
    keyPrefix: clientId,
    leaseMs: LONG_WAIT_MS,
    retryWithoutTokenMs: LONG_WAIT_MS,
  };
}

function start(config: ChildConfig): FleetChild {
  const child = startChild(config, { AZURE_LOG_LEVEL: "info" });
  running.push(child);
  return child;
}

/** The store key of `config`'s one scope, as the credential computes it. */
function storeKey(config: ChildConfig): string {
  return storeKeyOf({
    authorityHost: config.authorityHost,
    clientId: config.clientId,
    tenantId: config.tenantId,
    scopes: config.scopes,
  });
}

/** Resolves once Redis has run `count` lease attempts for `config`'s key (a bounded poll). */
async function leaseAttemptsReach(config: ChildConfig, count: number): Promise<void> {
  const key = `${config.keyPrefix}:v1:lease:${storeKey(config)}`;
  for (;;) {
    if (leaseAttempts.filter(([attempted]) => attempted === key).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A Redis store in this test process, holding the lease as another fleet member would. */
async function holderStore(config: ChildConfig, clientSecret: string) {
  const store = await createRedisTokenStore({
    url: redis.url,
    clientSecret,
    credentialId: credentialIdOf(config),
    keyPrefix: config.keyPrefix,
  });
  cleanups.push(() => store.close());
  const lease = await store.lease(storeKey(config), LONG_WAIT_MS);
  if (lease === null) throw new Error("the test could not take the lease");
  return { store, lease };
}

/** The waiter's token: it must come well before the 60 s the old code slept. */
async function tokenOf(waiter: FleetChild): Promise<string> {
  await waiter.until((child) => child.tokens(scope).length >= 1);
  return waiter.tokens(scope)[0] as string;
}

test("a waiter takes over at once when the holder's caller aborts its getToken", async () => {
  // Arrange: the holder takes the lease and its request hangs at the emulator.
  const config = app();
  emulator.injectFault({ match: { clientId: config.clientId }, hang: true, times: 1 });
  const holder = start({ ...config, abortOnStdinEnd: true });
  await emulator.waitForRequests(emulator.requestCount() + 1);
  const waiter = start(config);
  await leaseAttemptsReach(config, 2);

  // Act: the holder's caller aborts; its lease is given back without a token.
  await holder.stop();

  // Assert: the waiter acquires (one more request), long before its 60 s wait would end.
  const token = await tokenOf(waiter);
  expect(holder.events).toContainEqual(expect.objectContaining({ type: "error", scope }));
  expect(emulator.verifyToken(token)).toMatchObject({ appid: config.clientId });
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(2);
  expect(await waiter.exited).toBe(0);
}, 30_000);

test("a waiter takes over at once when the holder closes during a rolling deploy", async () => {
  // Arrange: a streaming holder takes the lease and its request hangs at the emulator.
  const config = app();
  emulator.injectFault({ match: { clientId: config.clientId }, hang: true, times: 1 });
  const holder = start({ ...config, mode: "stream" });
  await emulator.waitForRequests(emulator.requestCount() + 1);
  const waiter = start(config);
  await leaseAttemptsReach(config, 2);

  // Act: the holder is stopped (its credential closed) before its token arrives.
  expect(await holder.stop()).toBe(0);

  // Assert
  const token = await tokenOf(waiter);
  expect(emulator.verifyToken(token)).toMatchObject({ appid: config.clientId });
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(2);
  expect(await waiter.exited).toBe(0);
}, 30_000);

test("a waiter takes over at once when the holder's token is sealed under a secret it does not have", async () => {
  // Arrange: another fleet member (sealing with the new secret of a rotation) holds the lease.
  const config = app();
  const { store, lease } = await holderStore(config, "the-next-secret-71be");
  const waiter = start(config);
  await leaseAttemptsReach(config, 2);

  // Act: it writes its token, which the waiter cannot open, and gives the lease back.
  const written = emulator.mintToken({ audience: "https://storage.azure.com", tenant: tenantId });
  await store.write(storeKey(config), {
    token: written,
    expiresOnTimestamp: Date.now() + 3_600_000,
  });
  await lease.release();

  // Assert: the waiter acquires its own token (the only request at the emulator).
  const token = await tokenOf(waiter);
  expect(token).not.toBe(written);
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(1);
  expect(await waiter.exited).toBe(0);
}, 30_000);

/**
 * A TCP proxy to Redis that holds every connection but the first for `delayMs` before
 * forwarding it: the waiter's command connection is at once, its SUBSCRIBE connection late.
 */
async function slowSubscriberProxy(delayMs: number): Promise<string> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(redis.port, "127.0.0.1");
    sockets.add(upstream);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pause();
    setTimeout(
      () => {
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      },
      connections++ === 0 ? 0 : delayMs,
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return `redis://127.0.0.1:${address.port}`;
}

test("a waiter whose SUBSCRIBE is not active yet when the holder writes still takes the token", async () => {
  // Arrange: the waiter's subscriber connection reaches Redis 3 s late.
  const config = app();
  const { store, lease } = await holderStore(config, secret);
  const waiter = start({ ...config, redisUrl: await slowSubscriberProxy(3_000) });
  await leaseAttemptsReach(config, 2);

  // Act: the holder writes (published before the waiter's SUBSCRIBE) and releases.
  const written = emulator.mintToken({ audience: "https://storage.azure.com", tenant: tenantId });
  await store.write(storeKey(config), {
    token: written,
    expiresOnTimestamp: Date.now() + 3_600_000,
  });
  await lease.release();

  // Assert: the waiter serves the holder's token, with no request of its own.
  expect(await tokenOf(waiter)).toBe(written);
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(0);
  expect(await waiter.exited).toBe(0);
}, 30_000);
