import { randomUUID } from "node:crypto";
import { VirtualTimeScheduler } from "rxjs";
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
    const correlationId = randomUUID();

    const failure: unknown = await client
      .run({ correlationId, signal: AbortSignal.abort() }, () =>
        postToken(emulator, client, form, { correlationId }),
      )
      .catch((error: unknown) => error);
    client.close();

    expect(failure).toMatchObject({ errorCode: "network_error", errorMessage: "Request aborted" });
    expect(emulator.requestCount()).toBe(before);
  });

  it("keeps each concurrent call's own signal: an abort destroys that call's request only", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });
    emulator.injectFault({ hang: true, times: 2 });
    const first = new AbortController();
    const second = new AbortController();
    const [oneId, twoId] = [randomUUID(), randomUUID()];
    const before = emulator.requestCount();
    // The requests themselves are observed, not only `run`, which also rejects on abort.
    let oneRequest: Promise<unknown> = Promise.resolve();
    let twoSettled = false;

    void client
      .run({ correlationId: oneId, signal: first.signal }, () => {
        oneRequest = postToken(emulator, client, form, { correlationId: oneId });
        return oneRequest;
      })
      .catch(() => undefined);
    const two = client
      .run({ correlationId: twoId, signal: second.signal }, () =>
        postToken(emulator, client, form, { correlationId: twoId }),
      )
      .catch((error: unknown) => error)
      .finally(() => (twoSettled = true));
    await emulator.waitForRequests(before + 2);
    first.abort();
    const oneFailure = await oneRequest.catch((error: unknown) => error);
    const third = await postToken(emulator, client, form); // the client still works
    const twoSettledBeforeItsAbort = twoSettled;
    second.abort();
    const twoFailure = await two;
    client.close();

    expect(oneFailure).toMatchObject({
      errorCode: "network_error",
      errorMessage: "Request aborted",
    });
    expect(third.status).toBe(200);
    expect(twoSettledBeforeItsAbort).toBe(false);
    expect(twoFailure).toMatchObject({ errorMessage: "Request aborted" });
  });

  it("applies a call's signal to the requests carrying its correlation id only", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });
    emulator.injectFault({ hang: true, times: 2 });
    const controller = new AbortController();
    const correlationId = randomUUID();
    const before = emulator.requestCount();
    let tagged: Promise<unknown> = Promise.resolve();
    let untagged: Promise<unknown> = Promise.resolve();
    let untaggedSettled = false;

    void client
      .run({ correlationId, signal: controller.signal }, () => {
        tagged = postToken(emulator, client, form, { correlationId });
        untagged = postToken(emulator, client, form, { correlationId: randomUUID() }).finally(
          () => (untaggedSettled = true),
        );
        return Promise.all([tagged, untagged]);
      })
      .catch(() => undefined);
    await emulator.waitForRequests(before + 2);
    controller.abort();
    const taggedFailure = await tagged.catch((error: unknown) => error);
    const untaggedSettledAfterAbort = untaggedSettled;
    client.close(); // ends the request nobody can cancel
    const untaggedFailure = await untagged.catch((error: unknown) => error);

    expect(taggedFailure).toMatchObject({ errorMessage: "Request aborted" });
    expect(untaggedSettledAfterAbort).toBe(false);
    expect(untaggedFailure).toMatchObject({ errorCode: "network_error" });
    expect(untaggedFailure).not.toMatchObject({ errorMessage: "Request aborted" });
  });

  it("applies a call's time limit on the client's scheduler, and forgets the call once it settles", async () => {
    const scheduler = new VirtualTimeScheduler();
    const client = createNetworkClient({ ca: emulator.caCertificate, scheduler });
    emulator.injectFault({ hang: true });
    const correlationId = randomUUID();
    const before = emulator.requestCount();

    const pending = client
      .run({ correlationId, timeoutMs: 5_000 }, () =>
        postToken(emulator, client, form, { correlationId }),
      )
      .catch((error: unknown) => error);
    await emulator.waitForRequests(before + 1);
    scheduler.flush();
    const failure = await pending;
    // Same id again: accepted, as the first call's entry is gone.
    const again = await client.run({ correlationId }, () =>
      postToken(emulator, client, form, { correlationId }),
    );
    client.close();

    expect(failure).toMatchObject({ errorCode: "network_error", errorMessage: "Request timeout" });
    expect(again.status).toBe(200);
  });

  it("refuses a correlation id that a pending call already uses, without calling back", async () => {
    const client = createNetworkClient({ ca: emulator.caCertificate });
    const correlationId = randomUUID();
    let release: () => void = () => undefined;
    let calledBack = false;

    const first = client.run({ correlationId }, () => new Promise<void>((r) => (release = r)));
    const second: unknown = await client
      .run({ correlationId }, () => {
        calledBack = true;
        return Promise.resolve();
      })
      .catch((error: unknown) => error);
    release();
    await first;
    client.close();

    expect((second as Error).message).toMatch(/already used by a pending call/);
    expect(calledBack).toBe(false);
  });
});
