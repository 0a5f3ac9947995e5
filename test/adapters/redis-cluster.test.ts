/**
 * `redisCredentials` with `createCluster`: three real `redis-server --cluster-enabled yes`
 * nodes on loopback, each behind the Azure-like token proxy (test/support/azure-redis-proxy.ts);
 * node-redis reaches the nodes it discovers through the proxies (`nodeAddressMap`), and every
 * node connection shares the provider. Real time, like test/adapters/redis-credentials.test.ts.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { createClient, createCluster } from "redis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClientSecretCredential } from "rx-identity";
import { redisCredentials } from "rx-identity/redis";
import { startEntraEmulator, type EntraEmulator } from "rx-identity/testing";
import { startAzureRedisProxy, type AzureRedisProxy } from "../support/azure-redis-proxy.js";
import { configureAcl } from "../support/azure-redis.js";
import { tenantA } from "../support/emulator.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const lifetimeMs = 4_000;
const clientId = randomUUID();
const clientSecret = `secret-${randomUUID()}`;
const objectId = randomUUID();
const aclPassword = `acl-${randomUUID()}`;
let emulator: EntraEmulator;
let directory: string;
const nodes: RunningRedis[] = [];
const proxies: AzureRedisProxy[] = [];

beforeAll(async () => {
  emulator = await startEntraEmulator();
  emulator.registerApplication({
    clientId,
    clientSecret,
    objectId,
    tokenLifetimeSeconds: lifetimeMs / 1000,
  });
  directory = await mkdtemp(join(tmpdir(), "rx-identity-cluster-"));
  for (let i = 0; i < 3; i++) {
    nodes.push(
      await startRedis({
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(directory, `nodes-${i}.conf`),
        ],
      }),
    );
  }
  await promisify(execFile)("redis-cli", [
    "--cluster",
    "create",
    ...nodes.map((node) => `127.0.0.1:${node.port}`),
    "--cluster-replicas",
    "0",
    "--cluster-yes",
  ]);
  for (const node of nodes) {
    const probe = createClient({ url: node.url });
    await probe.connect();
    for (let i = 0; i < 100; i++) {
      const info = await probe.sendCommand<string>(["CLUSTER", "INFO"]);
      if (info.includes("cluster_state:ok")) break;
      await sleep(100);
    }
    await probe.close();
    await configureAcl(node.url, objectId, aclPassword, `admin-${randomUUID()}`);
    proxies.push(
      await startAzureRedisProxy({
        upstreamPort: node.port,
        verify: (token) => emulator.verifyToken(token),
        users: new Map([[objectId, aclPassword]]),
      }),
    );
  }
}, 60_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.stop();
  for (const node of nodes) await node.stop();
  await emulator?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

it("createCluster: every node connection re-authenticates over three token lifetimes, none is closed, no command fails", async () => {
  const credential = new ClientSecretCredential(tenantA, clientId, clientSecret, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
  });
  const errors: Error[] = [];
  const provider = redisCredentials(credential, {
    username: objectId,
    onReAuthenticationError: (error) => errors.push(error),
  });
  const addresses = new Map(
    nodes.map((node, i) => [
      `127.0.0.1:${node.port}`,
      { host: "127.0.0.1", port: proxies[i]!.port },
    ]),
  );
  const cluster = createCluster({
    rootNodes: [{ url: proxies[0]!.url }],
    defaults: { credentialsProvider: provider },
    nodeAddressMap: (address) => addresses.get(address),
  });
  cluster.on("error", (error: Error) => errors.push(error));
  await cluster.connect();

  let sent = 0;
  let failed = 0;
  const started = Date.now();
  while (Date.now() - started < 3 * lifetimeMs + 500) {
    const key = `key-${sent % 30}`; // spread over the three nodes' slots
    sent++;
    try {
      await cluster.set(key, String(sent));
      if ((await cluster.get(key)) !== String(sent)) failed++;
    } catch {
      failed++;
    }
    await sleep(5);
  }

  const perNode = proxies.map((proxy) => proxy.stats);
  const tokens = emulator.requestCount({ clientId });
  console.log(
    `createCluster over ${((Date.now() - started) / lifetimeMs).toFixed(1)} token lifetimes: ${sent} SET+GET pairs, ${failed} failed; per node: connections ${perNode.map((s) => s.connections).join("/")}, AUTH accepted ${perNode.map((s) => s.authAccepted).join("/")}, closed for expiry ${perNode.map((s) => s.closedForExpiry).join("/")}; ${tokens} tokens`,
  );
  expect(failed).toBe(0);
  expect(errors).toEqual([]);
  for (const stats of perNode) {
    expect(stats.closedForExpiry).toBe(0);
    expect(stats.authRefused).toBe(0);
    // Every node was used, and re-authenticated with every token after its first.
    expect(stats.authAccepted).toBeGreaterThanOrEqual(3);
  }

  await cluster.close();
  await credential.close();
}, 60_000);
