import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetworkClient } from "../../src/credential/network-client.js";
import { startEntraEmulator } from "../../src/testing/index.js";
import type { EntraEmulator } from "../../src/testing/index.js";
import { postToken, storageScope, tenantA } from "../support/emulator.js";

const clientId = "77777777-7777-4777-8777-777777777777";
const clientSecret = "network-client-secret";
const form = {
  grant_type: "client_credentials",
  client_id: clientId,
  client_secret: clientSecret,
  scope: storageScope,
};

describe("createNetworkClient (MSAL system.networkClient)", () => {
  let emulator: EntraEmulator;

  beforeAll(async () => {
    emulator = await startEntraEmulator();
    emulator.registerApplication({ clientId, clientSecret });
  });
  afterAll(() => emulator.stop());

  it("trusts the given CA for this client only and returns what msal-node's HttpClient returns", async () => {
    const trusting = createNetworkClient({ ca: [emulator.caCertificate] });
    const plain = createNetworkClient();
    const url = `${emulator.authorityHost}/${tenantA}/v2.0/.well-known/openid-configuration`;

    const response = await trusting.sendGetRequestAsync<{ issuer: string }>(url);
    const refused: unknown = await plain.sendGetRequestAsync(url).catch((error: unknown) => error);
    trusting.close();
    plain.close();

    expect(response.status).toBe(200);
    expect(response.body.issuer).toBe(`${emulator.authorityHost}/${tenantA}/v2.0`);
    expect(response.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(Object.keys(response.headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(refused).toMatchObject({ name: "AuthError", errorCode: "network_error" });
    expect((refused as Error).message).toMatch(/certificate/i);
  });

  it("returns error statuses with their parsed JSON body rather than throwing", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });

    const response = await postToken(emulator, client, { ...form, client_secret: "nope" });
    client.close();

    expect(response.status).toBe(401);
    expect(response.body["error"]).toBe("invalid_client");
  });

  it("refuses http: URLs", async () => {
    const client = createNetworkClient();

    const failure: unknown = await client
      .sendGetRequestAsync(`http://127.0.0.1:${emulator.port}/x`)
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ errorCode: "network_error" });
    expect((failure as Error).message).toMatch(/https/);
  });

  it("rejects at once when the signal is already aborted, without a request", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });
    const before = emulator.requestCount();

    const failure: unknown = await client
      .run({ signal: AbortSignal.abort() }, () => postToken(emulator, client, form))
      .catch((error: unknown) => error);
    client.close();

    expect(failure).toMatchObject({ errorCode: "network_error", errorMessage: "Request aborted" });
    expect(emulator.requestCount()).toBe(before);
  });

  it("keeps each concurrent call's own signal", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });
    emulator.injectFault({ hang: true, times: 2 });
    const first = new AbortController();
    const second = new AbortController();
    const before = emulator.requestCount();

    const one = client
      .run({ signal: first.signal }, () => postToken(emulator, client, form))
      .catch((error: unknown) => error);
    let twoSettled = false;
    const two = client
      .run({ signal: second.signal }, () => postToken(emulator, client, form))
      .catch((error: unknown) => error)
      .finally(() => (twoSettled = true));
    await emulator.waitForRequests(before + 2);
    first.abort();
    expect(await one).toMatchObject({ errorMessage: "Request aborted" });
    const third = await postToken(emulator, client, form); // the client still works
    const twoSettledBeforeItsAbort = twoSettled;
    second.abort();

    expect(await two).toMatchObject({ errorMessage: "Request aborted" });
    expect(third.status).toBe(200);
    expect(twoSettledBeforeItsAbort).toBe(false);
    client.close();
  });
});
