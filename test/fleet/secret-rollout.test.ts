/**
 * A secret rotation rolled out across a fleet: real processes, each following its own
 * secret file, sharing tokens through the Redis store on a real `redis-server`, against the
 * HTTPS emulator. Mid-rollout some processes hold the old secret only and some both: no
 * process serves an entry it cannot authenticate (it ignores it, logs it, and acquires),
 * no stream errors, and once every process has rotated (and the old secret is revoked) the
 * fleet is back to about one request per key per refresh cycle. Tokens live 4 s and the
 * emulator sends `refresh_in` 2 s.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";
import { startChild, type FleetChild } from "./support/children.js";

const PROCESSES = 4;
const tenantId = "f1000000-0000-4000-8000-00000000001f";
const OLD = "rollout-old-secret-5b1d";
const NEW = "rollout-new-secret-c83a";
const scopes = ["https://storage.azure.com/.default", "https://vault.azure.net/.default"];

let emulator: EntraEmulator;
let redis: RunningRedis;
let folder: string;
const running: FleetChild[] = [];

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startEntraEmulator(), startRedis()]);
  folder = await mkdtemp(join(tmpdir(), "rx-identity-rollout-"));
});
afterAll(async () => {
  await Promise.all(running.splice(0).map((child) => child.kill()));
  await Promise.all([emulator?.stop(), redis?.stop()]);
  await rm(folder, { recursive: true, force: true });
});

/** Replaces a secret file as an agent would: write a temporary file, rename it over. */
async function mount(file: string, secret: string): Promise<void> {
  await writeFile(`${file}.tmp`, secret);
  await rename(`${file}.tmp`, file);
}

/** Waits until every child has `more` tokens per scope beyond what it had. */
async function everyChildGets(fleet: readonly FleetChild[], more: number): Promise<void> {
  const before = fleet.map((child) => scopes.map((scope) => child.tokens(scope).length));
  await Promise.all(
    fleet.map((child, i) =>
      child.until((c) =>
        scopes.every((scope, s) => c.tokens(scope).length >= (before[i]?.[s] ?? 0) + more),
      ),
    ),
  );
}

test("a fleet rolling out a new secret keeps every stream alive, serves only entries it can open, and ends at about one request per key per cycle", async () => {
  // Arrange: every process on the old secret, each through its own secret file.
  const clientId = `rollout-${randomUUID()}`;
  emulator.registerApplication({
    clientId,
    clientSecret: OLD,
    tokenLifetimeSeconds: 4,
    refreshInSeconds: 2,
  });
  const files = Array.from({ length: PROCESSES }, (_, i) => join(folder, `secret-${i}`));
  await Promise.all(files.map((file) => writeFile(file, OLD)));
  const fleet = files.map((secretFile) => {
    const child = startChild(
      {
        mode: "stream",
        authorityHost: emulator.authorityHost,
        caFile: emulator.caFile,
        tenantId,
        clientId,
        clientSecret: "unused: the secret file wins",
        secretFile,
        scopes,
        redisUrl: redis.url,
        keyPrefix: clientId,
        leaseMs: 1_000,
      },
      { AZURE_LOG_LEVEL: "info" },
    );
    running.push(child);
    return child;
  });
  await everyChildGets(fleet, 2);

  // Act 1: the new secret is added; half of the fleet mounts it.
  emulator.addClientSecret(clientId, NEW);
  await Promise.all(files.slice(0, 2).map((file) => mount(file, NEW)));
  await everyChildGets(fleet, 3);

  // Act 2: the rest mounts it; the old secret is revoked once they all have.
  await Promise.all(files.slice(2).map((file) => mount(file, NEW)));
  await Promise.all(
    fleet.map((child) => child.until((c) => c.stderr().includes("client secret rotated"))),
  );
  emulator.revokeClientSecret(clientId, OLD);
  await everyChildGets(fleet, 2);
  const settled = scopes.map((scope) => emulator.requestCount({ clientId, scope }));
  const tokensBefore = fleet.map((child) => scopes.map((scope) => child.tokens(scope).length));
  await everyChildGets(fleet, 3);

  // Assert: no stream ended; every token is one the emulator signed for this app.
  for (const child of fleet) {
    expect(
      child.events.filter((event) => event.type === "error" || event.type === "complete"),
    ).toEqual([]);
    for (const scope of scopes) {
      for (const token of child.tokens(scope)) {
        expect(emulator.verifyToken(token)["appid"]).toBe(clientId);
      }
    }
  }
  // Mid-rollout, the processes still on the old secret met entries sealed under the new one
  // and ignored them (they could not authenticate them) rather than serving them.
  const oldSide = fleet
    .slice(2)
    .map((child) => child.stderr())
    .join("\n");
  expect(oldSide).toContain("sealed under a client secret this process does not hold");
  // After the rollout: about one request per key per cycle again, not one per process.
  scopes.forEach((scope, s) => {
    const cycles = Math.max(
      ...fleet.map((child, i) => child.tokens(scope).length - (tokensBefore[i]?.[s] ?? 0)),
    );
    const requests = emulator.requestCount({ clientId, scope }) - (settled[s] ?? 0);
    expect(requests).toBeLessThanOrEqual(cycles + 1);
  });
  const everything = fleet.map((child) => child.stderr() + JSON.stringify(child.events)).join("");
  expect(everything).not.toContain(OLD);
  expect(everything).not.toContain(NEW);
  await Promise.all(fleet.map((child) => child.stop()));
}, 90_000);
