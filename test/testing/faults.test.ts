import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startEntraEmulator } from "../../src/testing/index.js";
import type { EntraEmulator } from "../../src/testing/index.js";
import { msalAgainst, postToken, storageScope, tenantA, tenantB } from "../support/emulator.js";
import type { MsalAgainstEmulator } from "../support/emulator.js";

const clientId = "55555555-5555-4555-8555-555555555555";
const otherClientId = "66666666-6666-4666-8666-666666666666";
const clientSecret = "fault-tolerant-secret";
const vaultScope = "https://vault.azure.net/.default";

describe("injected faults", () => {
  let emulator: EntraEmulator;
  const clients: MsalAgainstEmulator[] = [];
  // A fresh MSAL app per use: MSAL throttles an app after a 429/5xx (DESIGN.md facts).
  const msal = (options: { tenant?: string; clientId?: string } = {}) => {
    const client = msalAgainst(emulator, { clientId, clientSecret, ...options });
    clients.push(client);
    return client;
  };
  const form = {
    grant_type: "client_credentials",
    client_id: clientId,
    client_secret: clientSecret,
    scope: storageScope,
  };

  beforeAll(async () => {
    emulator = await startEntraEmulator();
    emulator.registerApplication({ clientId, clientSecret });
    emulator.registerApplication({ clientId: otherClientId, clientSecret });
  });
  afterEach(() => {
    emulator.clearFaults();
    emulator.setLatency(0);
    for (const client of clients.splice(0)) client.close();
    vi.useRealTimers();
  });
  afterAll(() => emulator.stop());

  it("answers any status with an Entra body, its AADSTS code and Retry-After in seconds", async () => {
    emulator.injectFault({ status: 429, retryAfter: 7 });

    const failure: unknown = await msal()
      .acquire()
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({
      name: "ServerError",
      status: 429,
      errorCode: "temporarily_unavailable",
      errorNo: 90033,
    });
    expect(emulator.requests.at(-1)).toMatchObject({ status: 429, faulted: true });
  });

  it("sends Retry-After as an HTTP-date, and custom error, code and description", async () => {
    const date = "Wed, 21 Oct 2015 07:28:00 GMT";
    emulator.injectFault({
      status: 503,
      error: "server_busy",
      aadsts: 50196,
      description: "Slow down.",
      retryAfter: date,
    });
    const client = msal();

    const response = await postToken(emulator, client.networkClient, form);

    expect(response.status).toBe(503);
    expect(response.headers["retry-after"]).toBe(date);
    expect(response.body).toMatchObject({ error: "server_busy", error_codes: [50196] });
    expect(response.body["error_description"]).toMatch(/^AADSTS50196: Slow down\.\r\nTrace ID: /);
  });

  it("drops the connection: MSAL fails with a network error", async () => {
    emulator.injectFault({ drop: true });

    const failure: unknown = await msal()
      .acquire()
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ errorCode: "network_error" });
    expect(emulator.requests.at(-1)).toMatchObject({ status: 0, faulted: true });
  });

  it("answers malformed JSON: MSAL fails to parse it", async () => {
    emulator.injectFault({ malformedJson: true });

    const failure: unknown = await msal()
      .acquire()
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ errorCode: "token_parsing_error" });
  });

  it("answers a token without expires_in", async () => {
    emulator.injectFault({ omitExpiresIn: true });

    const response = await postToken(emulator, msal().networkClient, form);

    expect(response.status).toBe(200);
    expect(response.body).toHaveProperty("access_token");
    expect(response.body).not.toHaveProperty("expires_in");
    expect(response.body).not.toHaveProperty("ext_expires_in");
  });

  it("hangs until the client's timeout ends the request", async () => {
    emulator.injectFault({ hang: true });
    const client = msal();

    const correlationId = randomUUID();

    const failure: unknown = await client.networkClient
      .run({ correlationId, timeoutMs: 100 }, () => client.acquire(storageScope, { correlationId }))
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ errorCode: "network_error", errorMessage: "Request timeout" });
    expect(emulator.requests.at(-1)).toMatchObject({ status: 0, faulted: true });
  });

  it("hangs until the caller aborts", async () => {
    emulator.injectFault({ hang: true });
    const client = msal();
    const controller = new AbortController();
    const before = emulator.requestCount();

    const correlationId = randomUUID();

    const pending = client.networkClient
      .run({ correlationId, signal: controller.signal }, () =>
        client.acquire(storageScope, { correlationId }),
      )
      .catch((error: unknown) => error);
    await emulator.waitForRequests(before + 1);
    controller.abort(new Error("caller gave up"));

    expect(await pending).toMatchObject({
      errorCode: "network_error",
      errorMessage: "Request aborted",
    });
  });

  it("delays the answer by delayMs plus the latency (virtual time)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    emulator.setLatency(1_000);
    emulator.injectFault({ delayMs: 4_000 });
    const client = msal();
    const before = emulator.requestCount();
    let settled = false;

    const delayed = postToken(emulator, client.networkClient, form).finally(() => (settled = true));
    await emulator.waitForRequests(before + 1);
    await vi.advanceTimersByTimeAsync(3_999);
    const second = postToken(emulator, client.networkClient, form); // waits the latency only
    await emulator.waitForRequests(before + 2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await second).status).toBe(200);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);

    expect((await delayed).status).toBe(200);
  });

  it("matches faults per tenant, scope and client id", async () => {
    emulator.injectFault({
      match: { tenant: tenantB.toUpperCase() },
      status: 500,
      times: Infinity,
    });
    emulator.injectFault({ match: { scope: vaultScope }, status: 502, times: Infinity });
    emulator.injectFault({ match: { clientId: otherClientId }, status: 504, times: Infinity });
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => 200,
        (error: { status?: number }) => error.status,
      );

    const results = [
      await outcome(msal({ tenant: tenantA }).acquire()),
      await outcome(msal({ tenant: tenantB }).acquire()),
      await outcome(msal({ tenant: tenantA }).acquire(vaultScope)),
      await outcome(msal({ tenant: tenantA, clientId: otherClientId }).acquire()),
    ];

    expect(results).toEqual([200, 500, 502, 504]);
  });

  it("applies a fault `times` times, then answers normally", async () => {
    const handle = emulator.injectFault({ status: 503, times: 2 });
    const client = msal();

    const statuses = [
      (await postToken(emulator, client.networkClient, form)).status,
      (await postToken(emulator, client.networkClient, form)).status,
      (await postToken(emulator, client.networkClient, form)).status,
    ];

    expect(statuses).toEqual([503, 503, 200]);
    expect(handle).toMatchObject({ hits: 2, remaining: 0 });
  });

  it("keeps an Infinity fault until cleared or removed", async () => {
    const client = msal();
    const handle = emulator.injectFault({ status: 500, times: Infinity });

    const during = [
      (await postToken(emulator, client.networkClient, form)).status,
      (await postToken(emulator, client.networkClient, form)).status,
    ];
    handle.remove();
    const afterRemove = (await postToken(emulator, client.networkClient, form)).status;
    emulator.injectFault({ status: 500, times: Infinity });
    emulator.clearFaults();
    const afterClear = (await postToken(emulator, client.networkClient, form)).status;

    expect(during).toEqual([500, 500]);
    expect(handle.hits).toBe(2);
    expect([afterRemove, afterClear]).toEqual([200, 200]);
  });

  it("refuses faults it cannot apply", () => {
    expect(() => emulator.injectFault({ times: 0 })).toThrow(/times/);
    expect(() => emulator.injectFault({ status: 42 })).toThrow(/status/);
    expect(() => emulator.injectFault({ delayMs: -1 })).toThrow(/delayMs/);
  });
});
