/**
 * A fleet of real processes, each with its own `ClientSecretCredential`, sharing tokens
 * through the Redis store on a real `redis-server`, against the HTTPS emulator. Tokens live
 * 4 s and the emulator sends `refresh_in` 2 s, so a refresh cycle takes about 2 s. The tests
 * wait for what the children print and assert counts, never timing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";
import type { ChildConfig } from "./fixtures/credential-child.js";
import { startChild, type FleetChild } from "./support/children.js";

const PROCESSES = 8;
const tenantId = "f0000000-0000-4000-8000-00000000000f";
const secret = "fleet-secret-9c1e";
const scopes = [
  "https://storage.azure.com/.default",
  "https://vault.azure.net/.default",
  "https://management.azure.com/.default",
];

let emulator: EntraEmulator;
let redis: RunningRedis;
const running: FleetChild[] = [];

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startEntraEmulator(), startRedis()]);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((child) => child.kill()));
  emulator.clearFaults();
});
afterAll(async () => {
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

/** A fresh app registration (so counts are per test) and the config of its fleet. */
function fleetApp(extra: Partial<ChildConfig> = {}): ChildConfig {
  const clientId = `fleet-${randomUUID()}`;
  emulator.registerApplication({
    clientId,
    clientSecret: secret,
    tokenLifetimeSeconds: 4,
    refreshInSeconds: 2,
  });
  return {
    mode: "stream",
    authorityHost: emulator.authorityHost,
    caFile: emulator.caFile,
    tenantId,
    clientId,
    clientSecret: secret,
    scopes,
    redisUrl: redis.url,
    keyPrefix: clientId,
    ...extra,
  };
}

function start(config: ChildConfig): FleetChild {
  // info-level logs on stderr show where each token came from ("token from the shared cache").
  const child = startChild(config, { AZURE_LOG_LEVEL: "info" });
  running.push(child);
  return child;
}

/** Whether `child` satisfies `count` for every scope. */
const everyScope =
  (count: (child: FleetChild, scope: string) => boolean) =>
  (child: FleetChild): boolean =>
    scopes.every((scope) => count(child, scope));

test("8 processes sharing 3 keys through Redis make about one request per key per refresh cycle, and each emits tokens another process wrote; Redis killed and restarted loses no subscriber", async () => {
  // Arrange
  const config = fleetApp();
  const fleet = Array.from({ length: PROCESSES }, () => start(config));
  const countOf = (scope: string): number =>
    emulator.requestCount({ clientId: config.clientId, scope });

  // Act 1: every process sees at least 3 tokens per key (the first and two refreshes).
  await Promise.all(
    fleet.map((child) => child.until(everyScope((c, s) => c.tokens(s).length >= 3))),
  );

  // Assert 1: requests per key stay about the number of cycles, not 8 times it.
  for (const scope of scopes) {
    const cycles = Math.max(...fleet.map((child) => child.tokens(scope).length));
    const minted = new Set(fleet.flatMap((child) => child.tokens(scope)));
    expect(countOf(scope)).toBeLessThanOrEqual(cycles + 1);
    expect(minted.size).toBeLessThanOrEqual(cycles + 1);
  }
  // Every process emitted tokens it did not request itself (read from Redis or published).
  for (const child of fleet) expect(child.stderr()).toContain("token from the shared cache");

  // Act 2: Redis dies; every process keeps refreshing on its own.
  const before = fleet.map((child) => scopes.map((scope) => child.tokens(scope).length));
  await redis.kill();
  await Promise.all(
    fleet.map((child, i) =>
      child.until(
        everyScope((c, s) => c.tokens(s).length >= (before[i]?.[scopes.indexOf(s)] ?? 0) + 2),
      ),
    ),
  );
  // Act 3: Redis returns (empty); the fleet shares again.
  const during = fleet.map((child) => scopes.map((scope) => child.tokens(scope).length));
  await redis.restart();
  await Promise.all(
    fleet.map((child, i) =>
      child.until(
        everyScope((c, s) => c.tokens(s).length >= (during[i]?.[scopes.indexOf(s)] ?? 0) + 2),
      ),
    ),
  );

  // Assert 2: no stream errored or completed, tokens kept getting fresher, and the log says
  // when the store went away and when it came back.
  for (const child of fleet) {
    expect(
      child.events.filter((event) => event.type === "error" || event.type === "complete"),
    ).toEqual([]);
    for (const scope of scopes) {
      const expiries = child.events.flatMap((event) =>
        event.type === "token" && event.scope === scope ? [event.expiresOnTimestamp] : [],
      );
      expect(expiries).toEqual([...expiries].sort((a, b) => a - b));
    }
    expect(child.stderr()).toContain("token store unavailable");
    expect(child.stderr()).toContain("token store available again");
  }
  await Promise.all(fleet.map((child) => child.stop()));
}, 90_000);

test("a lease holder killed mid-refresh blocks the fleet no longer than its lease", async () => {
  // Arrange: the first process takes the lease and its request hangs at the emulator.
  const config = fleetApp({ scopes: [scopes[0] as string], leaseMs: 1_500 });
  const scope = scopes[0] as string;
  emulator.injectFault({ match: { clientId: config.clientId }, hang: true, times: 1 });
  const seen = emulator.requestCount();
  const holder = start(config);
  await emulator.waitForRequests(seen + 1);
  await holder.kill();

  // Act: seven more processes want the token.
  const fleet = Array.from({ length: PROCESSES - 1 }, () => start(config));
  await Promise.all(fleet.map((child) => child.until((c) => c.tokens(scope).length >= 1)));

  // Assert: one more request in all (after the lease lapsed), not one per process.
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(2);
  const first = new Set(fleet.map((child) => child.tokens(scope)[0]));
  expect(first.size).toBe(1);
  await Promise.all(fleet.map((child) => child.stop()));
}, 60_000);
