/**
 * `credential.events$` and `credential.status()` against the emulator (real MSAL over
 * HTTPS): what a service's health check and alerting would read.
 */
import { firstValueFrom, filter, take, toArray, VirtualTimeScheduler } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClientSecretCredential,
  type ClientSecretCredentialOptions,
  type CredentialEvent,
} from "../../src/credential/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const storage = "https://storage.azure.com/.default";
const secret = "CANARY-events-secret-1b9c";

let emulator: EntraEmulator;
let appCounter = 0;
const credentials: ClientSecretCredential[] = [];

beforeAll(async () => {
  emulator = await startEntraEmulator();
});

afterEach(async () => {
  emulator.clearFaults();
  await Promise.all(credentials.splice(0).map((credential) => credential.close()));
});

afterAll(async () => {
  await emulator.stop();
});

function setup(
  app: { refreshInSeconds?: number } = {},
  options: ClientSecretCredentialOptions = {},
): { credential: ClientSecretCredential; clientId: string; events: CredentialEvent[] } {
  const clientId = `events-app-${++appCounter}`;
  emulator.registerApplication({ clientId, clientSecret: secret, tenants: [tenant], ...app });
  const credential = new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
    refresh: { retryBaseMs: 10, retryCapMs: 20 },
    ...options,
  });
  credentials.push(credential);
  const events: CredentialEvent[] = [];
  credential.events$.subscribe((event) => events.push(event));
  return { credential, clientId, events };
}

describe("credential.events$", () => {
  it("reports an acquisition with its key, duration, expiry and refresh time, and nothing on a cache hit", async () => {
    // Arrange
    const { credential, events } = setup();

    // Act
    const token = await credential.getToken(storage);
    const afterFirst = events.length;
    await credential.getToken(storage);

    // Assert
    expect(events.map((event) => event.type)).toEqual([
      "acquisition-started",
      "acquisition-succeeded",
    ]);
    expect(events[1]).toMatchObject({
      type: "acquisition-succeeded",
      tenantId: tenant,
      scopes: [storage],
      enableCae: false,
      hasClaims: false,
      attempt: 0,
      expiresOnTimestamp: token.expiresOnTimestamp,
      refreshAt: token.refreshAfterTimestamp,
    });
    const succeeded = events[1] as Extract<CredentialEvent, { type: "acquisition-succeeded" }>;
    expect(succeeded.durationMs).toBeGreaterThan(0);
    expect(events).toHaveLength(afterFirst);
  });

  it("reports a retried 503 as a transient failure with status, AADSTS code and retry delay", async () => {
    // Arrange
    const { credential, clientId, events } = setup();
    emulator.injectFault({ status: 503, match: { clientId } });

    // Act
    await credential.getToken(storage);

    // Assert
    expect(events.map((event) => event.type)).toEqual([
      "acquisition-started",
      "acquisition-failed",
      "acquisition-started",
      "acquisition-succeeded",
    ]);
    expect(events[1]).toMatchObject({
      attempt: 0,
      failure: {
        transient: true,
        name: "AuthenticationError",
        status: 503,
        error: "temporarily_unavailable",
        aadstsCodes: [90033],
      },
    });
    const failed = events[1] as Extract<CredentialEvent, { type: "acquisition-failed" }>;
    expect(failed.retryInMs).toBeGreaterThanOrEqual(0);
    expect(failed.retryInMs).toBeLessThanOrEqual(20);
    // Every event names its key: tenant, scopes, CAE flag, whether it has claims.
    for (const event of events) {
      expect(event).toMatchObject({
        tenantId: tenant,
        scopes: [storage],
        enableCae: false,
        hasClaims: false,
      });
    }
  });

  it("names the CAE flag and that claims were asked for, never the claims", async () => {
    // Arrange
    const { credential, events } = setup();
    const claims = JSON.stringify({ access_token: { acrs: { essential: true, value: "c1" } } });

    // Act
    await credential.getToken(storage, { enableCae: true, claims });

    // Assert
    expect(events.map((event) => event.type)).toEqual([
      "acquisition-started",
      "acquisition-succeeded",
    ]);
    for (const event of events) {
      expect(event).toMatchObject({ tenantId: tenant, scopes: [storage], enableCae: true });
      expect(event).toMatchObject({ hasClaims: true });
      expect(JSON.stringify(event)).not.toContain("acrs");
    }
  });

  it("reports a permanent refusal with its AADSTS code and no retry", async () => {
    // Arrange
    const wrong = new ClientSecretCredential(tenant, "nobody-registered-this", secret, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    credentials.push(wrong);
    const wrongEvents = firstValueFrom(
      wrong.events$.pipe(
        filter((event) => event.type === "acquisition-failed"),
        take(1),
      ),
    );

    // Act
    await expect(wrong.getToken(storage)).rejects.toMatchObject({ name: "AuthenticationError" });

    // Assert
    expect(await wrongEvents).toMatchObject({
      type: "acquisition-failed",
      retryInMs: undefined,
      failure: { transient: false, status: 400, error: "unauthorized_client" },
    });
  });

  it("completes when the credential closes", async () => {
    // Arrange
    const { credential } = setup();
    const all = firstValueFrom(credential.events$.pipe(toArray()));
    await credential.getToken(storage);

    // Act
    await credential.close();

    // Assert
    expect((await all).map((event) => event.type)).toEqual([
      "acquisition-started",
      "acquisition-succeeded",
    ]);
  });
});

describe("credential.status()", () => {
  it("says the storage token is usable until T and its refresh failed 3 times in a row with AADSTS7000222", async () => {
    // Arrange: a token due for refresh after 1 s, then an expired secret for every refresh.
    const { credential, clientId, events } = setup(
      { refreshInSeconds: 1 },
      { refresh: { permanentFailureBackoffMs: 20 } },
    );
    const subscription = credential.token$(storage).subscribe();
    const token = await credential.getToken(storage);
    const healthy = credential.status();
    emulator.injectFault({
      status: 401,
      error: "invalid_client",
      aadsts: 7000222,
      match: { clientId },
      times: Number.POSITIVE_INFINITY,
    });

    // Act: wait for three failed refreshes in a row.
    await firstValueFrom(
      credential.events$.pipe(
        filter((event) => event.type === "acquisition-failed"),
        take(3),
        toArray(),
      ),
    );
    const failing = credential.status();
    subscription.unsubscribe();

    // Assert
    expect(healthy).toMatchObject({ closed: false, tokenStore: "none" });
    expect(healthy.keys).toEqual([
      {
        tenantId: tenant,
        scopes: [storage],
        enableCae: false,
        hasClaims: false,
        expiresOnTimestamp: token.expiresOnTimestamp,
        usableUntil: expect.any(Number) as number,
        refreshAt: token.refreshAfterTimestamp,
        refreshing: false,
        servedStale: false,
        consecutiveFailures: 0,
        lastFailure: undefined,
      },
    ]);
    const [key] = failing.keys;
    expect(key?.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(key?.servedStale).toBe(true);
    expect(key?.expiresOnTimestamp).toBe(token.expiresOnTimestamp);
    expect(key?.usableUntil).toBeGreaterThan(failing.at);
    expect(key?.lastFailure).toMatchObject({
      transient: false,
      status: 401,
      error: "invalid_client",
      aadstsCodes: [7000222],
    });
    const stale = events.filter((event) => event.type === "token-served-stale");
    expect(stale).toHaveLength(1);
    // A refusal, not an outage: the event says so (it said "transient" for every failure).
    expect(stale[0]).toMatchObject({ failure: { transient: false, error: "invalid_client" } });
  });

  it("lists a key while its first request is in flight, and not once the engine forgot it", async () => {
    // Arrange: an application the emulator does not know is refused (no token, no retry).
    const wrong = new ClientSecretCredential(tenant, "nobody-registered-this-either", secret, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    credentials.push(wrong);
    emulator.setLatency(100);

    // Act
    const refused = wrong.getToken(storage).catch((error: unknown) => error);
    await emulator.waitForRequests(emulator.requests.length + 1);
    const inFlight = wrong.status();
    await refused;
    emulator.setLatency(0);

    // Assert: in flight, then forgotten at once after the refusal (issue #12).
    expect(inFlight.keys).toMatchObject([
      { scopes: [storage], refreshing: true, usableUntil: undefined, consecutiveFailures: 0 },
    ]);
    expect(wrong.status().keys).toEqual([]);
  });

  it("drops a key whose token expired with nobody asking (virtual time)", async () => {
    // Arrange
    const scheduler = new VirtualTimeScheduler();
    const { credential } = setup({}, { scheduler });
    const token = await credential.getToken(storage);
    expect(credential.status().keys).toHaveLength(1);

    // Act: the clock moves past the token's expiry, nothing subscribed, no call.
    scheduler.schedule(() => undefined, token.expiresOnTimestamp + 1 - scheduler.now());
    scheduler.flush();

    // Assert: the engine keeps it only until its sweep; status() lists live keys only.
    expect(credential.status()).toMatchObject({ at: token.expiresOnTimestamp + 1, keys: [] });
  });

  it("is empty and closed after close()", async () => {
    // Arrange
    const { credential } = setup();
    await credential.getToken(storage);

    // Act
    await credential.close();

    // Assert
    expect(credential.status()).toMatchObject({ closed: true, keys: [] });
  });
});
