/**
 * `createTestCredential` as a user's unit tests would use it: inside `TestScheduler.run()`
 * marbles (where `asyncScheduler` is virtual), and on a `VirtualTimeScheduler` driven by
 * hand with `getToken` Promises. No fake timers, no sleeping, no network.
 */
import type { AccessToken } from "@azure/core-auth";
import { isTokenCredential } from "@azure/core-auth";
import { defer, finalize, map, VirtualTimeScheduler, type Observable } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { describe, expect, it } from "vitest";
import { rotateOnNewValue } from "rx-identity";
import {
  isAuthenticationError,
  isCredentialUnavailableError,
  isInvalidArgumentError,
} from "rx-identity";
import {
  MAX_REQUESTS_PER_INSTANT,
  createTestCredential,
  decodeTestToken,
  type TestCredential,
} from "rx-identity/testing";

const SCOPE = "https://storage.azure.com/.default";

const newTestScheduler = (): TestScheduler =>
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

/** Runs every action due up to `ms` from now, then leaves the clock exactly there. */
function advance(scheduler: VirtualTimeScheduler, ms: number): void {
  const target = scheduler.now() + ms;
  scheduler.schedule(() => undefined, ms);
  scheduler.maxFrames = target;
  scheduler.flush();
}

/** Lets settled Promises run their callbacks. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const n = (token: AccessToken): number => decodeTestToken(token.token).n;

/**
 * The user's code under test: keeps a connection authenticated by opening a new one with
 * each new token and closing the old one once the new one is ready (make-before-break).
 */
function authenticatedMessages(
  credential: TestCredential,
  connect: (accessToken: string) => Observable<string>,
): Observable<string> {
  return credential.token$(SCOPE).pipe(rotateOnNewValue((token) => connect(token.token)));
}

describe("createTestCredential in TestScheduler.run marbles", () => {
  it("emits a token after the latency, refreshes at half-life, and makes one request per token", () => {
    const scheduler = newTestScheduler();
    let credential!: TestCredential;
    scheduler.run(({ expectObservable }) => {
      // Arrange: 100 ms tokens that take 2 ms to arrive; run mode makes the default
      // asyncScheduler virtual.
      credential = createTestCredential({ lifetimeMs: 100, latencyMs: 2 });

      // Act + Assert: t1 at 2 (expires 102), refresh at half-life 52, t2 at 54 (expires 154).
      expectObservable(credential.token$(SCOPE).pipe(map(n)), "^ 60ms !").toBe("--a 51ms b", {
        a: 1,
        b: 2,
      });
      expectObservable(
        credential.token$(SCOPE).pipe(map((t) => t.expiresOnTimestamp)),
        "^ 60ms !",
      ).toBe("--a 51ms b", { a: 102, b: 154 });
    });

    // Two subscribers, one request per token; the unsubscribe at 61 stopped the refresh timer.
    expect(credential.requests.map((r) => [r.at, r.outcome])).toEqual([
      [0, "token"],
      [52, "token"],
    ]);
  });

  it("re-authenticates the user's connection on each new token, closing the old one only when the new one is ready", () => {
    const scheduler = newTestScheduler();
    const opened: [number, number][] = [];
    const closed: [number, number][] = [];
    scheduler.run(({ cold, expectObservable }) => {
      // Arrange: a connection is ready 1 ms after it opens, then sends a message 2 ms later.
      const credential = createTestCredential({ lifetimeMs: 100, latencyMs: 2 });
      const connect = (accessToken: string): Observable<string> =>
        defer(() => {
          const tokenNumber = decodeTestToken(accessToken).n;
          opened.push([tokenNumber, scheduler.now()]);
          return cold("-r-m", { r: `ready#${tokenNumber}`, m: `msg#${tokenNumber}` }).pipe(
            finalize(() => closed.push([tokenNumber, scheduler.now()])),
          );
        });

      // Act + Assert: t1 at 2 opens connection 1 (ready 3, message 5); t2 at 54 opens
      // connection 2 (ready 55, message 57).
      expectObservable(authenticatedMessages(credential, connect), "^ 60ms !").toBe(
        "---r-m 49ms R-M",
        { r: "ready#1", m: "msg#1", R: "ready#2", M: "msg#2" },
      );
    });

    expect(opened).toEqual([
      [1, 2],
      [2, 54],
    ]);
    // Connection 1 lived until connection 2 was ready; connection 2 until the unsubscribe.
    expect(closed).toEqual([
      [1, 55],
      [2, 61],
    ]);
  });

  it("rides out an injected transient failure: no error downstream, a retry after Retry-After, then the fresh token", () => {
    const scheduler = newTestScheduler();
    let credential!: TestCredential;
    scheduler.run(({ expectObservable }) => {
      // No retry floor: this timeline is in milliseconds of a 100 ms token.
      credential = createTestCredential({
        lifetimeMs: 100,
        latencyMs: 2,
        policy: { retryFloorMs: 0 },
      });
      // Arrange: the refresh at 52 fails (503, Retry-After 5 ms) at 54.
      scheduler.schedule(() => credential.fail({ transient: true, retryAfterMs: 5 }), 10);

      // Act + Assert: the retry at 59 brings t2 at 61.
      expectObservable(credential.token$(SCOPE).pipe(map(n)), "^ 70ms !").toBe("--a 58ms b", {
        a: 1,
        b: 2,
      });
    });

    expect(credential.requests.map((r) => [r.at, r.outcome])).toEqual([
      [0, "token"],
      [52, "failed"],
      [59, "token"],
    ]);
  });

  it("errors token$ with the injected permanent failure when no token can be had, after one request", () => {
    const scheduler = newTestScheduler();
    let credential!: TestCredential;
    scheduler.run(({ expectObservable }) => {
      // Arrange: the first request is refused (401 invalid_client) after 3 ms.
      credential = createTestCredential({ latencyMs: 3 });
      credential.fail({ transient: false });

      // Act + Assert
      expectObservable(credential.token$(SCOPE)).toBe(
        "---#",
        undefined,
        expect.objectContaining({
          name: "AuthenticationError",
          statusCode: 401,
          transient: false,
          errorResponse: expect.objectContaining({ error: "invalid_client" }),
        }),
      );
    });

    expect(credential.requestCount()).toBe(1);
  });
});

describe("createTestCredential on a VirtualTimeScheduler, with getToken", () => {
  it("is a TokenCredential whose getToken answers from cache, refreshes in the background after the refresh time, and mints JWT-shaped tokens", async () => {
    // Arrange
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler, tenantId: "contoso.onmicrosoft.com" });
    expect(isTokenCredential(credential)).toBe(true);

    // Act: a cold getToken waits for the request.
    const first = credential.getToken(SCOPE);
    advance(scheduler, 0);
    const t1 = await first;

    // Assert: an hour-long token, refreshed 5 minutes before expiry (55 min).
    expect(t1).toMatchObject({
      expiresOnTimestamp: 3_600_000,
      refreshAfterTimestamp: 3_300_000,
      tokenType: "Bearer",
    });
    expect(t1.token.split(".")).toHaveLength(3);
    expect(decodeTestToken(t1.token)).toMatchObject({
      aud: "https://storage.azure.com",
      iss: "https://sts.windows.net/contoso.onmicrosoft.com/",
      tid: "contoso.onmicrosoft.com",
      exp: 3_600,
      n: 1,
    });

    // Before the refresh time: the cached token, no request.
    advance(scheduler, 3_299_999);
    expect(await credential.getToken(SCOPE)).toBe(t1);
    expect(credential.requestCount()).toBe(1);

    // After it: the still-usable token at once, and one background refresh.
    advance(scheduler, 1);
    expect(await credential.getToken(SCOPE)).toBe(t1);
    advance(scheduler, 0);
    await settle();
    const t2 = await credential.getToken(SCOPE);
    expect(n(t2)).toBe(2);
    expect(t2.expiresOnTimestamp).toBe(3_300_000 + 3_600_000);
    expect(credential.requestCount()).toBe(2);
    await credential.close();
  });

  it("keeps keys apart as ClientSecretCredential does: CAE, per-request tenants, and claims (always a new request)", async () => {
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler });
    const get = async (options?: Parameters<TestCredential["getToken"]>[1]) => {
      const promise = credential.getToken([SCOPE, "https://vault.azure.net/.default"], options);
      advance(scheduler, 0);
      return decodeTestToken((await promise).token);
    };

    const plain = await get();
    const cae = await get({ enableCae: true });
    const other = await get({ tenantId: "FABRIKAM.onmicrosoft.com" });
    const claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';
    await get({ claims });
    await get({ claims });
    await get();

    expect(plain.scp).toEqual([
      "https://storage.azure.com/.default",
      "https://vault.azure.net/.default",
    ]);
    expect(plain.xms_cc).toBeUndefined();
    expect(cae.xms_cc).toEqual(["cp1"]);
    expect(other.tid).toBe("fabrikam.onmicrosoft.com");
    expect(credential.requests.map((r) => [r.tenantId.slice(0, 8), r.enableCae, r.claims])).toEqual(
      [
        ["00000000", false, undefined],
        ["00000000", true, undefined],
        ["fabrikam", false, undefined],
        ["00000000", false, claims],
        ["00000000", false, claims],
      ],
    );
    await credential.close();
  });

  it("times out a getToken in virtual time and cancels the request nobody waits for", async () => {
    // Arrange: requests take 10 s.
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler, latencyMs: 10_000 });

    // Act
    const result = credential
      .getToken(SCOPE, { requestOptions: { timeout: 5_000 } })
      .catch((error: unknown) => error);
    advance(scheduler, 5_000);

    // Assert
    const error = await result;
    expect(isAuthenticationError(error)).toBe(true);
    expect(error).toMatchObject({ statusCode: 0, errorResponse: { error: "request_timeout" } });
    expect(credential.requests.map((r) => r.outcome)).toEqual(["cancelled"]);
    await credential.close();
  });

  it("applies a fault schedule and lifetime changes: an outage longer than the retry budget fails cold callers, and recovery brings the new lifetime", async () => {
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler, latencyMs: 100 });
    credential.scheduleFaults([{ startMs: 0, durationMs: 60_000, transient: true, status: 503 }]);
    credential.setLifetime(600_000, 120_000);

    // During the outage a cold caller gets the 503 once the 20 s retry budget is spent.
    const failed = credential.getToken(SCOPE).catch((error: unknown) => error);
    advance(scheduler, 30_000);
    expect(await failed).toMatchObject({ statusCode: 503, transient: true });

    // After it, the next request succeeds with the new lifetime and refresh_in.
    advance(scheduler, 30_000);
    const recovered = credential.getToken(SCOPE);
    advance(scheduler, 100);
    const token = await recovered;
    expect(token.expiresOnTimestamp).toBe(scheduler.now() + 600_000);
    expect(token.refreshAfterTimestamp).toBe(scheduler.now() + 120_000);
    expect(credential.requestCount((r) => r.outcome === "failed")).toBeGreaterThan(1);
    await credential.close();
  });

  it("turns a retry loop that never lets virtual time move into an error instead of a hang", async () => {
    // Arrange: no latency, no Retry-After, no jitter, no floor: every retry at one instant.
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler, policy: { retryFloorMs: 0 } });
    credential.fail({ transient: true, times: Infinity });

    // Act
    const result = credential.getToken(SCOPE).catch((error: unknown) => error);
    advance(scheduler, 0);

    // Assert
    const error = await result;
    expect(isCredentialUnavailableError(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/retryAfterMs.*latencyMs/);
    expect(credential.requestCount()).toBe(MAX_REQUESTS_PER_INSTANT + 1);
    await credential.close();
  });

  it("rejects bad input before any request, with the same typed errors as ClientSecretCredential", async () => {
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({
      scheduler,
      additionallyAllowedTenants: ["fabrikam.onmicrosoft.com"],
    });

    await expect(credential.getToken("two scopes")).rejects.toSatisfy(isInvalidArgumentError);
    await expect(credential.getToken(SCOPE, { claims: "[1]" })).rejects.toSatisfy(
      isInvalidArgumentError,
    );
    await expect(credential.getToken(SCOPE, { tenantId: "contoso.com" })).rejects.toSatisfy(
      isCredentialUnavailableError,
    );
    expect(() => credential.fail({ transient: true, times: -1 })).toThrow(/times/);
    expect(() => createTestCredential({ lifetimeMs: 0 })).toThrow(/lifetimeMs/);
    expect(credential.requestCount()).toBe(0);
    await credential.close();
  });

  it("close() completes token$ and makes later calls reject with CredentialUnavailableError", async () => {
    const scheduler = new VirtualTimeScheduler();
    const credential = createTestCredential({ scheduler });
    const seen: string[] = [];
    credential.token$(SCOPE).subscribe({
      next: (t) => seen.push(`token ${n(t)}`),
      complete: () => seen.push("complete"),
    });
    advance(scheduler, 0);

    await credential.close();

    expect(seen).toEqual(["token 1", "complete"]);
    await expect(credential.getToken(SCOPE)).rejects.toSatisfy(isCredentialUnavailableError);
  });
});
