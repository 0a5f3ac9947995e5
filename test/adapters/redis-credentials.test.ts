/**
 * `redisCredentials` with node-redis against a Redis that behaves as Azure's does (see
 * test/support/azure-redis-proxy.ts): tokens from the Entra ID emulator living 4 s, checked
 * by signature, audience, user and `exp`, and a connection closed when its token expires
 * without a fresh AUTH. Real time: the proxy reads the real clock, as Azure does.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAuthenticationError, isInvalidArgumentError } from "rx-identity";
import { redisCredentials } from "rx-identity/redis";
import { startAzureLikeRedis, type AzureLikeRedis } from "../support/azure-redis.js";

const lifetimeMs = 4_000;
let azure: AzureLikeRedis;

beforeAll(async () => {
  azure = await startAzureLikeRedis(lifetimeMs / 1000);
});
afterAll(() => azure?.stop());

describe("redisCredentials with createClient", () => {
  it("over five token lifetimes a RESP2 client and a RESP3 subscriber, busy all along, lose nothing and are never closed", async () => {
    const credential = azure.credential();
    const errors: Error[] = [];
    const provider = redisCredentials(credential, {
      username: azure.objectId,
      onReAuthenticationError: (error) => errors.push(error),
    });
    // RESP2 re-authenticates with AUTH, RESP3 (node-redis 6's default) with AUTH as well, also
    // on a subscribed connection.
    const client = createClient({ url: azure.proxy.url, RESP: 2, credentialsProvider: provider });
    const subscriber = createClient({
      url: azure.proxy.url,
      RESP: 3,
      credentialsProvider: provider,
    });
    let reconnects = 0;
    for (const c of [client, subscriber]) {
      c.on("error", (error: Error) => errors.push(error));
      c.on("reconnecting", () => reconnects++);
    }
    await client.connect();
    await subscriber.connect();
    const received: string[] = [];
    await subscriber.subscribe("ticks", (message) => received.push(message));
    azure.proxy.resetStats();
    const tokensBefore = azure.emulator.requestCount({ clientId: azure.clientId });

    let sent = 0;
    let failed = 0;
    let published = 0;
    const started = Date.now();
    while (Date.now() - started < 5 * lifetimeMs + 500) {
      sent++;
      try {
        await client.incr("counter");
        if (sent % 10 === 0) {
          await client.publish("ticks", String(sent));
          published++;
        }
      } catch {
        failed++;
      }
      await sleep(5);
    }
    await sleep(100); // the last published message on its way

    const tokens = azure.emulator.requestCount({ clientId: azure.clientId }) - tokensBefore;
    const { closedForExpiry, authAccepted, authRefused } = azure.proxy.stats;
    console.log(
      `redisCredentials over ${((Date.now() - started) / lifetimeMs).toFixed(1)} token lifetimes: commands sent ${sent}, failed ${failed}; messages published ${published}, received ${received.length}; connections closed for expiry ${closedForExpiry}; AUTH ${authAccepted} accepted (${authRefused} refused) for ${tokens} new tokens on 2 connections; reconnects ${reconnects}`,
    );
    expect(failed).toBe(0);
    expect(closedForExpiry).toBe(0);
    expect(reconnects).toBe(0);
    expect(authRefused).toBe(0);
    expect(errors).toEqual([]);
    expect(received).toHaveLength(published);
    expect(Number(await azure.admin.get("counter"))).toBe(sent);
    // Each refreshed token re-authenticated both connections, once.
    expect(tokens).toBeGreaterThanOrEqual(5);
    expect(authAccepted).toBe(2 * tokens);

    await subscriber.close();
    await client.close();
    await credential.close();
  }, 40_000);

  it("a token outage longer than a lifetime surfaces a typed error, and the client recovers when the service does", async () => {
    const credential = azure.credential();
    const reported: Error[] = [];
    const provider = redisCredentials(credential, {
      username: azure.objectId,
      onReAuthenticationError: (error) => reported.push(error),
      retry: { minDelayMs: 200, maxDelayMs: 1_000 },
    });
    const client = createClient({ url: azure.proxy.url, credentialsProvider: provider });
    const clientErrors: Error[] = [];
    client.on("error", (error: Error) => clientErrors.push(error));
    await client.connect();
    azure.proxy.resetStats();

    const outageMs = lifetimeMs + 2_000;
    const fault = azure.emulator.injectFault({ status: 503, times: Number.POSITIVE_INFINITY });
    const outageStarted = Date.now();
    let failedDuringOutage = 0;
    while (Date.now() - outageStarted < outageMs) {
      await client.ping().catch(() => failedDuringOutage++);
      await sleep(50);
    }
    fault.remove();
    const serviceBack = Date.now();
    let recoveredAfterMs: number | undefined;
    while (Date.now() - serviceBack < 20_000) {
      const ok = await client.ping().then(
        () => true,
        () => false,
      );
      if (ok) {
        recoveredAfterMs = Date.now() - serviceBack;
        break;
      }
      await sleep(50);
    }

    const typed = [...reported, ...clientErrors]
      .map((error) => (isAuthenticationError(error) ? error : error.cause))
      .filter(isAuthenticationError);
    console.log(
      `token outage of ${outageMs} ms (token lifetime ${lifetimeMs} ms): ${failedDuringOutage} pings failed, connections closed for expiry ${azure.proxy.stats.closedForExpiry}, typed errors ${typed.length} (first: ${typed[0]?.name} ${typed[0]?.statusCode}), recovered ${recoveredAfterMs} ms after the service did`,
    );
    expect(typed.length).toBeGreaterThan(0);
    expect(typed[0]).toMatchObject({ statusCode: 503, transient: true });
    expect(recoveredAfterMs).toBeDefined();
    expect(await client.ping()).toBe("PONG");

    await client.close();
    await credential.close();
  }, 60_000);

  it("refuses bad input at once", () => {
    const credential = azure.credential();
    expect(() => redisCredentials(credential, { username: "" })).toThrow(/object id/);
    expect(() => redisCredentials({} as never, { username: "x" })).toThrow(/token\$/);
    const bad = (() => {
      try {
        redisCredentials(credential, { username: "x", scopes: "two scopes" });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(isInvalidArgumentError(bad)).toBe(true);
    void credential.close();
  });
});
