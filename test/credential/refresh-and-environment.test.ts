import type { AccessToken } from "@azure/core-auth";
import { VirtualTimeScheduler, firstValueFrom, skip } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isCredentialUnavailableError, isInvalidArgumentError } from "../../src/errors/index.js";
import { createMemoryTokenStore } from "../../src/stores/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "c0000000-0000-4000-8000-00000000000c";
const scope = "https://storage.azure.com/.default";
const secret = "CANARY-env-secret";

let emulator: EntraEmulator;
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

describe("refresh on the scheduler's clock (virtual time, real HTTPS)", () => {
  it("token$ emits a fresh token at refresh_in, with one request per refresh", async () => {
    const clientId = `app-refresh-${Date.now()}`;
    emulator.registerApplication({
      clientId,
      clientSecret: secret,
      tenants: "*",
      tokenLifetimeSeconds: 3_600,
      refreshInSeconds: 1_800,
    });
    const scheduler = new VirtualTimeScheduler();
    const credential = new ClientSecretCredential(tenant, clientId, secret, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
      scheduler,
    });
    try {
      const received: AccessToken[] = [];
      const subscription = credential.token$(scope).subscribe((token) => received.push(token));
      const first = await firstValueFrom(credential.token$(scope));
      expect(first.expiresOnTimestamp).toBe(3_600_000);
      expect(first.refreshAfterTimestamp).toBeLessThanOrEqual(1_800_000);

      const second = firstValueFrom(credential.token$(scope).pipe(skip(1)));
      advanceTo(scheduler, 1_800_000);
      const refreshed = await second;
      expect(refreshed.token).not.toBe(first.token);
      expect(refreshed.expiresOnTimestamp).toBeGreaterThan(first.expiresOnTimestamp);
      expect(emulator.requestCount({ clientId })).toBe(2);
      subscription.unsubscribe();
      expect(received.map((t) => t.token)).toEqual([first.token, refreshed.token]);
    } finally {
      await credential.close();
    }
  });
});

describe("configuration", () => {
  it("fromEnvironment reads the AZURE_* variables", async () => {
    const clientId = `app-env-${Date.now()}`;
    emulator.registerApplication({ clientId, clientSecret: secret, tenants: "*" });
    const credential = ClientSecretCredential.fromEnvironment(
      { ca: emulator.caCertificate },
      {
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: clientId,
        AZURE_CLIENT_SECRET: secret,
        AZURE_AUTHORITY_HOST: emulator.authorityHost,
        AZURE_ADDITIONALLY_ALLOWED_TENANTS:
          "d0000000-0000-4000-8000-00000000000d; e0000000-0000-4000-8000-00000000000e",
      },
    );
    try {
      expect(credential.authorityHost).toBe(emulator.authorityHost);
      const token = await credential.getToken(scope, {
        tenantId: "e0000000-0000-4000-8000-00000000000e",
      });
      expect(token.token).toMatch(/^ey/);
    } finally {
      await credential.close();
    }
  });

  it("fromEnvironment names every missing variable", () => {
    let error: unknown;
    try {
      ClientSecretCredential.fromEnvironment({}, { AZURE_TENANT_ID: tenant });
    } catch (caught) {
      error = caught;
    }
    expect(isCredentialUnavailableError(error)).toBe(true);
    expect((error as Error).message).toContain("AZURE_CLIENT_ID");
    expect((error as Error).message).toContain("AZURE_CLIENT_SECRET");
    expect((error as Error).message).not.toContain("AZURE_TENANT_ID");
  });

  it("tokenCachePersistenceOptions.enabled together with a tokenStore is refused clearly", () => {
    let error: unknown;
    try {
      new ClientSecretCredential(tenant, "app", secret, {
        tokenCachePersistenceOptions: { enabled: true },
        tokenStore: createMemoryTokenStore(),
      });
    } catch (caught) {
      error = caught;
    }
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /either `tokenStore` or `tokenCachePersistenceOptions/,
    );
  });

  it("AZURE_AUTHORITY_HOST is the default authority host", () => {
    const saved = process.env["AZURE_AUTHORITY_HOST"];
    process.env["AZURE_AUTHORITY_HOST"] = "https://login.microsoftonline.us/";
    try {
      const credential = new ClientSecretCredential(tenant, "app", secret);
      expect(credential.authorityHost).toBe("https://login.microsoftonline.us");
      void credential.close();
    } finally {
      if (saved === undefined) delete process.env["AZURE_AUTHORITY_HOST"];
      else process.env["AZURE_AUTHORITY_HOST"] = saved;
    }
  });
});
