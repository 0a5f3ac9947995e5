/**
 * The fleet store on a Redis that takes only Entra ID tokens (Azure Managed Redis without
 * access keys): the store authenticates with `redisCredentials`, fed by a credential that
 * holds no store, so the Redis token never depends on the Redis it opens (no cycle).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClientSecretCredential, credentialIdOf, storeKeyOf } from "rx-identity";
import { createRedisTokenStore, redisCredentials } from "rx-identity/redis";
import { startAzureLikeRedis, type AzureLikeRedis } from "../support/azure-redis.js";
import { tenantA } from "../support/emulator.js";

const lifetimeSeconds = 4;
let azure: AzureLikeRedis;

beforeAll(async () => {
  azure = await startAzureLikeRedis(lifetimeSeconds);
});
afterAll(() => azure?.stop());

/** One process of the fleet: a bootstrap credential for Redis, the store, the app's credential. */
async function startProcess() {
  const { emulator, clientId, clientSecret } = azure;
  const options = { authorityHost: emulator.authorityHost, ca: emulator.caCertificate };
  // Holds no store: its Redis token is acquired and refreshed in this process's memory.
  const bootstrap = new ClientSecretCredential(tenantA, clientId, clientSecret, options);
  const store = await createRedisTokenStore({
    url: azure.proxy.url,
    clientSecret,
    credentialId: credentialIdOf({ authorityHost: emulator.authorityHost, clientId }),
    credentials: redisCredentials(bootstrap, { username: azure.objectId }),
  });
  const credential = new ClientSecretCredential(tenantA, clientId, clientSecret, {
    ...options,
    tokenStore: store,
  });
  return {
    store,
    credential,
    async close() {
      await credential.close();
      await store.close();
      await bootstrap.close();
    },
  };
}

it("two processes share tokens through a Redis they authenticate to with Entra ID tokens, across token lifetimes", async () => {
  const [a, b] = [await startProcess(), await startProcess()];
  // Every key the fleet writes is published on the update channel: record them all.
  const written = new Set<string>();
  const updates = a.store.watch().subscribe((update) => written.add(update.key));
  azure.proxy.resetStats();
  const requests = (scope: string): number =>
    azure.emulator.requestCount({ clientId: azure.clientId, scope });

  const shared: boolean[] = [];
  const started = Date.now();
  let round = 0;
  while (Date.now() - started < 2.5 * lifetimeSeconds * 1000) {
    const scope = `https://app-${round++}.example.test/.default`;
    const first = await a.credential.getToken(scope);
    const second = await b.credential.getToken(scope);
    shared.push(second.token === first.token && requests(scope) === 1);
    await sleep(500);
  }

  const storeKey = (scope: string): string =>
    storeKeyOf({
      authorityHost: azure.emulator.authorityHost,
      clientId: azure.clientId,
      tenantId: tenantA,
      scopes: [scope],
    });
  const redisTokens = requests("https://redis.azure.com/.default");
  console.log(
    `fleet store on Entra-authenticated Redis over ${((Date.now() - started) / 1000 / lifetimeSeconds).toFixed(1)} Redis-token lifetimes: ${shared.filter(Boolean).length}/${shared.length} tokens shared (one request each), ${redisTokens} Redis-scope token requests, keys written to the store ${written.size}, AUTH accepted ${azure.proxy.stats.authAccepted}, connections closed for expiry ${azure.proxy.stats.closedForExpiry}`,
  );
  expect(shared.every(Boolean)).toBe(true);
  expect(a.store.available && b.store.available).toBe(true);
  expect(azure.proxy.stats.closedForExpiry).toBe(0);
  expect(azure.proxy.stats.authRefused).toBe(0);
  // The Redis-scope tokens never went into the store they open: only the app's tokens did.
  expect(written.size).toBe(shared.length);
  expect(written.has(storeKey("https://redis.azure.com/.default"))).toBe(false);
  expect(written.has(storeKey("https://app-0.example.test/.default"))).toBe(true);
  expect(redisTokens).toBeGreaterThanOrEqual(2 * 2);

  updates.unsubscribe();
  await a.close();
  await b.close();
}, 40_000);
