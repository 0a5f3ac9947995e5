/**
 * A fleet of real processes sharing tokens through the Redis store on a real Redis Cluster
 * (3 masters, 3 replicas, `cluster-node-timeout` 1 s, on loopback), against the HTTPS
 * emulator; a master is killed (SIGKILL) while the fleet refreshes. Tokens live 4 s with
 * `refresh_in` 2 s, so a refresh cycle takes about 2 s. Redis and the processes are real, so
 * time is real; the test waits for what the children print and asserts counts, never timing.
 *
 * Prints the token requests per key per refresh cycle before, during and after the failover.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { credentialIdOf, storeKeyOf, STORE_VERSION } from "../../src/stores/index.js";
import { keyLayout } from "../../src/stores/redis-protocol.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startRedisCluster, type RunningRedisCluster } from "../support/redis-cluster.js";
import type { ChildConfig } from "./fixtures/credential-child.js";
import { startChild, type FleetChild } from "./support/children.js";

const PROCESSES = 4;
const tenantId = "f1000000-0000-4000-8000-00000000001f";
const secret = "cluster-fleet-secret-4d2a";
const scopes = Array.from({ length: 6 }, (_, i) => `https://failover-${i}.example/.default`);

let emulator: EntraEmulator;
let cluster: RunningRedisCluster;
const running: FleetChild[] = [];

beforeAll(async () => {
  [emulator, cluster] = await Promise.all([startEntraEmulator(), startRedisCluster()]);
}, 30_000);
afterEach(async () => {
  await Promise.all(running.splice(0).map((child) => child.kill()));
});
afterAll(async () => {
  await Promise.all([emulator?.stop(), cluster?.stop()]);
});

/** Token requests and tokens seen per scope at one moment. */
interface Snapshot {
  readonly requests: readonly number[];
  /** Per process, per scope: tokens emitted so far. */
  readonly tokens: readonly (readonly number[])[];
}

test("a master killed during a refresh cycle: no process loses a token, and once its replica has taken over the fleet makes about one request per key per cycle again", async () => {
  // Arrange: a fresh app registration; every process follows every scope.
  const clientId = `failover-${randomUUID()}`;
  emulator.registerApplication({
    clientId,
    clientSecret: secret,
    tokenLifetimeSeconds: 4,
    refreshInSeconds: 2,
  });
  const config: ChildConfig = {
    mode: "stream",
    authorityHost: emulator.authorityHost,
    caFile: emulator.caFile,
    tenantId,
    clientId,
    clientSecret: secret,
    scopes,
    redisCluster: cluster.rootNodes.map((node) => node.url),
    keyPrefix: clientId,
  };
  const fleet = Array.from({ length: PROCESSES }, () => {
    const child = startChild(config, { AZURE_LOG_LEVEL: "info" });
    running.push(child);
    return child;
  });
  const snapshot = (): Snapshot => ({
    requests: scopes.map((scope) => emulator.requestCount({ clientId, scope })),
    tokens: fleet.map((child) => scopes.map((scope) => child.tokens(scope).length)),
  });
  /** Waits until every process has `more` tokens per scope beyond `from`. */
  const tokensBeyond = (from: Snapshot, more: number): Promise<void[]> =>
    Promise.all(
      fleet.map((child, p) =>
        child.until((c) =>
          scopes.every((scope, s) => c.tokens(scope).length >= (from.tokens[p]?.[s] ?? 0) + more),
        ),
      ),
    );
  /** Requests per key per cycle between two snapshots (a cycle: a token every process saw). */
  const perKeyPerCycle = (from: Snapshot, to: Snapshot): number => {
    let requests = 0;
    let cycles = 0;
    scopes.forEach((_, s) => {
      requests += (to.requests[s] ?? 0) - (from.requests[s] ?? 0);
      cycles += Math.min(
        ...fleet.map((_, p) => (to.tokens[p]?.[s] ?? 0) - (from.tokens[p]?.[s] ?? 0)),
      );
    });
    return requests / cycles;
  };
  // The master of the first scope's slot group, and which keys it holds.
  const prefix = `${clientId}:v${STORE_VERSION}`;
  const layout = keyLayout(
    prefix,
    credentialIdOf({ authorityHost: emulator.authorityHost, clientId }),
    true,
  );
  const tokenKeyOf = (scope: string): string =>
    layout.tokenKey(
      storeKeyOf({ authorityHost: emulator.authorityHost, clientId, tenantId, scopes: [scope] }),
    );
  const victim = await cluster.masterOf(tokenKeyOf(scopes[0]!));
  const onVictim = (
    await Promise.all(
      scopes.map(async (scope) => (await cluster.masterOf(tokenKeyOf(scope))) === victim),
    )
  ).filter(Boolean).length;

  // Act 1 (before): three cycles on a healthy cluster.
  const start = snapshot();
  await tokensBeyond(start, 3);
  const beforeEnd = snapshot();

  // Act 2 (during): the next refresh wave starts (a process gets a 4th token), and the
  // master dies then; the fleet goes on until the replica has taken over and two more cycles.
  await Promise.race(
    fleet.map((child) => child.until((c) => scopes.some((scope) => c.tokens(scope).length >= 4))),
  );
  await victim.kill();
  const killedAt = snapshot();
  await cluster.healthy();
  await tokensBeyond(snapshot(), 2);
  const duringEnd = snapshot();

  // Act 3 (after): three more cycles on the healed cluster.
  await tokensBeyond(duringEnd, 3);
  const afterEnd = snapshot();

  const before = perKeyPerCycle(start, beforeEnd);
  const during = perKeyPerCycle(killedAt, duringEnd);
  const after = perKeyPerCycle(duringEnd, afterEnd);
  console.log(
    `Redis Cluster failover, ${PROCESSES} processes x ${scopes.length} keys (master 127.0.0.1:${victim.port} killed, holding ${onVictim} of the ${scopes.length} keys): token requests per key per cycle before ${before.toFixed(2)}, during ${during.toFixed(2)}, after ${after.toFixed(2)} (${PROCESSES} when nobody shares)`,
  );

  // Assert: no stream errored or completed; every process always held a usable token (each
  // token of a scope arrived before the one before it expired); sharing before and after.
  for (const child of fleet) {
    expect(
      child.events.filter((event) => event.type === "error" || event.type === "complete"),
    ).toEqual([]);
    for (const scope of scopes) {
      const tokens = child.events.flatMap((event) =>
        event.type === "token" && event.scope === scope ? [event] : [],
      );
      tokens.slice(1).forEach((token, i) => {
        expect(token.receivedAt).toBeLessThan(tokens[i]!.expiresOnTimestamp);
        expect(token.expiresOnTimestamp).toBeGreaterThanOrEqual(tokens[i]!.expiresOnTimestamp);
      });
    }
  }
  expect(onVictim).toBeGreaterThanOrEqual(1);
  expect(before).toBeLessThanOrEqual(1.34);
  expect(after).toBeLessThanOrEqual(1.34);
  await Promise.all(fleet.map((child) => child.stop()));
}, 60_000);
