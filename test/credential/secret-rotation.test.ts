/**
 * Rotating the client secret without a restart, in virtual time against the real emulator
 * (real HTTPS, real MSAL): the secret is an Observable; a rotation drops no held token, new
 * requests use the newest secret, a refused secret is retried once with a newer one and
 * never in a loop. Request counts come from the emulator.
 */
import type { AccessToken } from "@azure/core-auth";
import { AzureLogger, setLogLevel } from "@azure/logger";
import { BehaviorSubject, firstValueFrom, Subject, VirtualTimeScheduler } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential, type CredentialEvent } from "../../src/credential/index.js";
import { secretFingerprint } from "../../src/credential/secret-source.js";
import { isAuthenticationError, isCredentialUnavailableError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "d0000000-0000-4000-8000-00000000000d";
const scope = "https://storage.azure.com/.default";

let emulator: EntraEmulator;
let apps = 0;
beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

/** Runs every action due up to `until` on the virtual clock. */
function advanceTo(scheduler: VirtualTimeScheduler, until: number): void {
  scheduler.maxFrames = until;
  scheduler.flush();
}

/** Lets real I/O (the HTTPS round trip) and the promise chains after it run. */
async function settle(until: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!until()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Setup {
  readonly clientId: string;
  readonly scheduler: VirtualTimeScheduler;
  readonly secret$: Subject<string>;
  readonly credential: ClientSecretCredential;
  readonly tokens: AccessToken[];
  readonly errors: unknown[];
  readonly logs: string[];
  /** Everything `credential.events$` emitted. */
  readonly events: CredentialEvent[];
  /** 401 answers and 200 answers the emulator gave this application. */
  readonly count: () => { refused: number; ok: number; all: number };
  /** Whether an attempt has started (`events$`) and not yet ended. */
  readonly inFlight: () => boolean;
  close(): Promise<void>;
}

/** An application with lifetime 3600 s and refresh_in 1800 s, and a token$ subscriber. */
async function setUp(first: string, options: { subscribe?: boolean } = {}): Promise<Setup> {
  apps += 1;
  const clientId = `rotation-app-${apps}`;
  emulator.registerApplication({
    clientId,
    clientSecret: first,
    tokenLifetimeSeconds: 3_600,
    refreshInSeconds: 1_800,
  });
  const logs: string[] = [];
  const original = AzureLogger.log;
  AzureLogger.log = (...args: unknown[]) => {
    logs.push(args.map(String).join(" "));
  };
  setLogLevel("verbose");
  const scheduler = new VirtualTimeScheduler();
  const secret$ = new BehaviorSubject(first);
  const credential = new ClientSecretCredential(tenant, clientId, secret$, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
    scheduler,
    refresh: { jitterRatio: 0 },
  });
  const attempts = { started: 0, ended: 0 };
  const events: CredentialEvent[] = [];
  credential.events$.subscribe((event) => {
    events.push(event);
    if (event.type === "acquisition-started") attempts.started += 1;
    if (event.type === "acquisition-succeeded" || event.type === "acquisition-failed") {
      attempts.ended += 1;
    }
  });
  const tokens: AccessToken[] = [];
  const errors: unknown[] = [];
  const subscription =
    options.subscribe === false
      ? undefined
      : credential.token$(scope).subscribe({
          next: (token) => tokens.push(token),
          error: (error: unknown) => errors.push(error),
        });
  if (subscription !== undefined) await settle(() => tokens.length === 1, "the first token");
  return {
    clientId,
    scheduler,
    secret$,
    credential,
    tokens,
    errors,
    logs,
    events,
    inFlight: () => attempts.started > attempts.ended,
    count: () => ({
      refused: emulator.requestCount({ clientId, status: 401 }),
      ok: emulator.requestCount({ clientId, status: 200 }),
      all: emulator.requestCount({ clientId }),
    }),
    close: async () => {
      subscription?.unsubscribe();
      await credential.close();
      AzureLogger.log = original;
      setLogLevel(undefined);
    },
  };
}

describe("a secret Observable (virtual time, real emulator)", () => {
  it("a token$ subscriber keeps working across a rotation whose old secret is revoked right after the new one is mounted", async () => {
    const t = await setUp("old-secret-aaaa");
    try {
      emulator.addClientSecret(t.clientId, "new-secret-bbbb");
      t.secret$.next("new-secret-bbbb");
      emulator.revokeClientSecret(t.clientId, "old-secret-aaaa");
      for (let cycle = 1; cycle <= 3; cycle += 1) {
        advanceTo(t.scheduler, cycle * 1_800_000);
        await settle(() => t.tokens.length === cycle + 1, `refresh ${cycle}`);
      }

      expect(t.errors).toEqual([]);
      expect(t.tokens.map((token) => token.expiresOnTimestamp)).toEqual([
        3_600_000, 5_400_000, 7_200_000, 9_000_000,
      ]);
      expect(t.count()).toEqual({ refused: 0, ok: 4, all: 4 });
      // The rotation is an event of fingerprints only, and its log line is written from it.
      expect(t.events.filter((event) => event.type === "secret-rotated")).toEqual([
        {
          type: "secret-rotated",
          at: 0,
          version: 2,
          fingerprint: secretFingerprint("new-secret-bbbb"),
          previousFingerprint: secretFingerprint("old-secret-aaaa"),
        },
      ]);
      const rotated = t.logs.filter((line) => line.includes("client secret rotated"));
      expect(rotated).toHaveLength(1);
      expect(rotated[0]).toContain(
        `from ${secretFingerprint("old-secret-aaaa")} to ${secretFingerprint("new-secret-bbbb")}`,
      );
      expect(t.logs.join("\n")).not.toMatch(/old-secret-aaaa|new-secret-bbbb/);
    } finally {
      await t.close();
    }
  });

  it("a rotation during a refresh: the request refused for the revoked secret is retried once, at once, with the new one", async () => {
    const t = await setUp("old-secret-cccc");
    try {
      emulator.setLatency(200);
      advanceTo(t.scheduler, 1_800_000);
      await emulator.waitForRequests(emulator.requests.length + 1);
      // The refresh is on the wire with the old secret: mount the new one, revoke the old.
      emulator.addClientSecret(t.clientId, "new-secret-dddd");
      t.secret$.next("new-secret-dddd");
      emulator.revokeClientSecret(t.clientId, "old-secret-cccc");
      await settle(() => t.tokens.length === 2, "the refreshed token");
      emulator.setLatency(0);

      expect(t.errors).toEqual([]);
      expect(t.count()).toEqual({ refused: 1, ok: 2, all: 3 });
      expect(t.tokens[1]?.expiresOnTimestamp).toBe(5_400_000);
      expect(t.logs.some((line) => line.includes("retrying once, at once"))).toBe(true);
    } finally {
      emulator.setLatency(0);
      await t.close();
    }
  });

  it("a rotation during an outage: the held token is served throughout, and the first answer after the outage is a token for the new secret", async () => {
    const t = await setUp("old-secret-eeee");
    try {
      const outage = emulator.injectFault({
        match: { clientId: t.clientId },
        status: 503,
        times: Infinity,
      });
      advanceTo(t.scheduler, 1_800_000);
      await settle(() => outage.hits === 1, "the first refused refresh");
      emulator.addClientSecret(t.clientId, "new-secret-ffff");
      t.secret$.next("new-secret-ffff");
      emulator.revokeClientSecret(t.clientId, "old-secret-eeee");
      // A retry is scheduled only once the 503 before it has been read, and a flush while a
      // request is on the wire would fire that request's time limit (it runs on the same
      // virtual clock): move the clock only between attempts.
      await settle(() => {
        if (!t.inFlight()) advanceTo(t.scheduler, 1_860_000);
        return outage.hits >= 2 && !t.inFlight();
      }, "retries during the outage");
      outage.remove();
      await settle(() => {
        if (!t.inFlight()) advanceTo(t.scheduler, 2_400_000);
        return t.tokens.length === 2;
      }, "the token after the outage");

      expect(t.errors).toEqual([]);
      expect(t.count().refused).toBe(0);
      expect(t.count().ok).toBe(2);
      expect(t.tokens[1]!.expiresOnTimestamp).toBeGreaterThan(t.tokens[0]!.expiresOnTimestamp);
    } finally {
      await t.close();
    }
  });

  it("two rotations in quick succession: the next request uses the newest secret, one request", async () => {
    const t = await setUp("secret-one-1111");
    try {
      emulator.addClientSecret(t.clientId, "secret-three-3333");
      t.secret$.next("secret-two-2222");
      t.secret$.next("secret-three-3333");
      emulator.revokeClientSecret(t.clientId, "secret-one-1111");
      advanceTo(t.scheduler, 1_800_000);
      await settle(() => t.tokens.length === 2, "the refreshed token");

      expect(t.errors).toEqual([]);
      expect(t.count()).toEqual({ refused: 0, ok: 2, all: 2 });
      const rotated = t.logs.filter((line) => line.includes("client secret rotated"));
      expect(rotated).toHaveLength(2);
      expect(rotated[1]).toContain(`to ${secretFingerprint("secret-three-3333")}`);
    } finally {
      await t.close();
    }
  });

  it("a wrong new secret while a token is held: one refused request, the token still served, no retry loop", async () => {
    const t = await setUp("good-secret-gggg");
    try {
      t.secret$.next("wrong-secret-hhhh");
      advanceTo(t.scheduler, 1_800_000);
      await settle(() => t.count().refused === 1, "the refused refresh");
      // Well inside the permanent-failure back-off (60 s): nothing more is sent.
      advanceTo(t.scheduler, 1_850_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const during = t.count();
      // After the back-off, one more try with the same wrong secret, still no loop.
      advanceTo(t.scheduler, 1_861_000);
      await settle(() => t.count().refused === 2, "the try after the back-off");
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(during).toEqual({ refused: 1, ok: 1, all: 2 });
      expect(t.count()).toEqual({ refused: 2, ok: 1, all: 3 });
      expect(t.errors).toEqual([]);
      expect(t.tokens).toHaveLength(1);
      expect(t.logs.some((line) => /was refused \(AADSTS7000215\)/.test(line))).toBe(true);
      expect(t.logs.join("\n")).not.toMatch(/good-secret-gggg|wrong-secret-hhhh/);
    } finally {
      await t.close();
    }
  });

  it("a wrong new secret while a token is held, then the right one: the back-off ends with it, the token is refreshed at once", async () => {
    const t = await setUp("good-secret-kkkk");
    try {
      t.secret$.next("wrong-secret-llll");
      advanceTo(t.scheduler, 1_800_000);
      await settle(() => t.count().refused === 1 && !t.inFlight(), "the refused refresh");
      // Inside the 60 s back-off (the clock stays at 1_800_000, the next try would be at
      // 1_860_000): the corrected secret is mounted and arrives.
      emulator.addClientSecret(t.clientId, "right-secret-mmmm");
      t.secret$.next("right-secret-mmmm");
      await settle(() => t.tokens.length === 2, "the token for the right secret");

      expect(t.scheduler.now()).toBe(1_800_000);
      expect(t.count()).toEqual({ refused: 1, ok: 2, all: 3 });
      expect(t.errors).toEqual([]);
      expect(t.tokens[1]?.expiresOnTimestamp).toBe(1_800_000 + 3_600_000);
      // getToken serves the new token too, with no further request.
      await expect(t.credential.getToken(scope)).resolves.toMatchObject({
        token: t.tokens[1]?.token,
      });
      expect(t.count().all).toBe(3);
    } finally {
      await t.close();
    }
  });

  it("a wrong new secret with no token: one refused request and a typed error, no retry; the next good secret is used at once", async () => {
    const t = await setUp("good-secret-iiii", { subscribe: false });
    try {
      t.secret$.next("wrong-secret-jjjj");
      const refused = await t.credential.getToken(scope).catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const afterRefusal = t.count();
      t.secret$.next("good-secret-iiii");
      const token = await t.credential.getToken(scope);

      expect(isAuthenticationError(refused)).toBe(true);
      expect(
        (refused as { errorResponse: { errorCodes?: number[] } }).errorResponse.errorCodes,
      ).toEqual([7000215]);
      expect(afterRefusal).toEqual({ refused: 1, ok: 0, all: 1 });
      expect(token.token).toMatch(/^ey/);
      expect(t.count()).toEqual({ refused: 1, ok: 1, all: 2 });
      expect(t.logs.filter((line) => line.includes("was refused"))).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it("an expired secret (AADSTS7000222) with a newer one mounted: retried once with it", async () => {
    const t = await setUp("aging-secret-kkkk", { subscribe: false });
    try {
      emulator.expireClientSecret(t.clientId, "aging-secret-kkkk");
      const refused = await t.credential.getToken(scope).catch((error: unknown) => error);
      emulator.addClientSecret(t.clientId, "fresh-secret-llll");
      t.secret$.next("fresh-secret-llll");
      const token = await t.credential.getToken(scope);

      expect(
        (refused as { errorResponse: { errorCodes?: number[] } }).errorResponse.errorCodes,
      ).toEqual([7000222]);
      expect(token.token).toMatch(/^ey/);
      expect(t.count()).toEqual({ refused: 1, ok: 1, all: 2 });
    } finally {
      await t.close();
    }
  });

  it("the first request waits for the first secret, and fails typed with no request when none comes in time", async () => {
    apps += 1;
    const clientId = `rotation-app-${apps}`;
    emulator.registerApplication({ clientId, clientSecret: "late-secret-mmmm" });
    const scheduler = new VirtualTimeScheduler();
    const never = new Subject<string>();
    const late = new Subject<string>();
    const options = {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
      scheduler,
    };
    const starved = new ClientSecretCredential(tenant, clientId, never, {
      ...options,
      secretTimeoutMs: 5_000,
    });
    const waiting = new ClientSecretCredential(tenant, clientId, late, options);
    try {
      const failed = starved.getToken(scope).catch((error: unknown) => error);
      const served = waiting.getToken(scope);
      advanceTo(scheduler, 5_000);
      const error = await failed;
      late.next("late-secret-mmmm");
      const token = await served;

      expect(isCredentialUnavailableError(error)).toBe(true);
      expect((error as Error).message).toMatch(/no client secret arrived .* within 5000 ms/);
      expect(token.token).toMatch(/^ey/);
      expect(emulator.requestCount({ clientId })).toBe(1);
    } finally {
      await starved.close();
      await waiting.close();
    }
  });

  it("a secret Observable that fails before its first value fails the request typed, naming why", async () => {
    const failing = new Subject<string>();
    const credential = new ClientSecretCredential(tenant, "any-app", failing, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    try {
      const pending = firstValueFrom(credential.token$(scope)).catch((error: unknown) => error);
      failing.error(new Error("vault unreachable"));
      const error = await pending;

      expect(isCredentialUnavailableError(error)).toBe(true);
      expect((error as Error).message).toContain("vault unreachable");
    } finally {
      await credential.close();
    }
  });
});
