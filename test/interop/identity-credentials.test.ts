/**
 * `reactiveCredential` over real `@azure/identity` credentials, not fakes, against the local
 * emulator over HTTPS (each credential trusts the emulator's CA through core-rest-pipeline's
 * `tlsOptions.ca`, which replaces Node's roots for that client only):
 *
 * - its `ClientSecretCredential` at the emulator's token endpoint;
 * - its `ManagedIdentityCredential` at the emulator's App Service-style managed identity
 *   endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER` on loopback, read at construction);
 * - its `WorkloadIdentityCredential` with a federated token file, whose JWT the emulator
 *   accepts as a jwt-bearer `client_assertion` from an issuer it trusts, including the file
 *   being rotated while a `token$` subscriber keeps working.
 *
 * Real time on purpose: these credentials read `Date.now()` and their own timers, so virtual
 * time cannot drive them. Lifetimes are short so refreshes come within seconds; nothing
 * asserts timing.
 */
import type { AccessToken } from "@azure/core-auth";
import {
  ClientSecretCredential as IdentityClientSecretCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import { randomUUID } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as pause } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { reactiveCredential } from "../../src/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "d0000000-0000-4000-8000-00000000000d";
const storageScope = "https://storage.azure.com/.default";
const vaultScope = "https://vault.azure.net/.default";
const issuer = "https://oidc.rx-identity.test/cluster-1";
const callers = 1_000;
/** The bare credential opens a connection and gets a token per caller: fewer of them. */
const bareCallers = 50;

let emulator: EntraEmulator;
let directory: string;

beforeAll(async () => {
  emulator = await startEntraEmulator({
    trustedIssuers: [issuer],
    managedIdentity: { tenant, tokenLifetimeSeconds: 3_599 },
  });
  directory = await mkdtemp(join(tmpdir(), "rx-identity-federated-"));
});
afterAll(async () => {
  await emulator?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** The `tlsOptions` that make an `@azure/identity` credential trust the emulator. */
function trustEmulator(): { tlsOptions: { ca: string } } {
  return { tlsOptions: { ca: emulator.caCertificate } };
}

function registerApp(options: { tokenLifetimeSeconds?: number; refreshInSeconds?: number } = {}) {
  const clientId = randomUUID();
  const clientSecret = `identity-interop-${randomUUID()}`;
  emulator.registerApplication({ clientId, clientSecret, tenants: [tenant], ...options });
  return { clientId, clientSecret };
}

/** An error message without the ids and times of its request, to compare two requests' errors. */
function withoutRequestIds(message: string): string {
  return message.replace(
    /(Timestamp|Trace ID|Correlation ID): [0-9a-f-]+( [0-9:.]+Z)?|\d{4}-\d\d-\d\d[ T][0-9:.]+Z/gi,
    "$1",
  );
}

/** Resolves when `check()` holds, polling; fails after `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await pause(20);
  }
}

describe("@azure/identity ClientSecretCredential", () => {
  test(`${callers} concurrent callers: one token request wrapped; ${bareCallers} bare: one each`, async () => {
    const { clientId, clientSecret } = registerApp();
    const bareApp = registerApp();
    const wrapped = reactiveCredential(
      new IdentityClientSecretCredential(tenant, clientId, clientSecret, {
        authorityHost: emulator.authorityHost,
        disableInstanceDiscovery: true,
        ...trustEmulator(),
      }),
    );
    const bare = new IdentityClientSecretCredential(
      tenant,
      bareApp.clientId,
      bareApp.clientSecret,
      { authorityHost: emulator.authorityHost, disableInstanceDiscovery: true, ...trustEmulator() },
    );

    const tokens = await Promise.all(
      Array.from({ length: callers }, () => wrapped.getToken(storageScope)),
    );
    const bareTokens = await Promise.all(
      Array.from({ length: bareCallers }, () => bare.getToken(storageScope)),
    );

    expect(emulator.requestCount({ clientId })).toBe(1);
    expect(emulator.requestCount({ clientId: bareApp.clientId })).toBe(bareCallers);
    expect(new Set(tokens.map((token) => token.token)).size).toBe(1);
    expect(bareTokens.every((token) => token !== null)).toBe(true);
    expect(emulator.verifyToken(tokens[0]!.token)).toMatchObject({
      appid: clientId,
      tid: tenant,
      aud: "https://storage.azure.com",
    });
    await wrapped.close();
  });

  test("a refused secret: its error passes through, the class and name bare has, not retried", async () => {
    const { clientId } = registerApp();
    const options = {
      authorityHost: emulator.authorityHost,
      disableInstanceDiscovery: true,
      ...trustEmulator(),
    };
    const bare = new IdentityClientSecretCredential(tenant, clientId, "wrong-secret", options);
    const wrapped = reactiveCredential(
      new IdentityClientSecretCredential(tenant, clientId, "wrong-secret", options),
    );

    const bareError = (await bare.getToken(storageScope).catch((e: unknown) => e)) as Error;
    const before = emulator.requestCount({ clientId });
    const error = (await wrapped.getToken(storageScope).catch((e: unknown) => e)) as Error;
    await pause(1_500);

    // @azure/identity turns MSAL's invalid_client into its AuthenticationRequiredError.
    expect(error.constructor).toBe(bareError.constructor);
    expect(error.name).toBe("AuthenticationRequiredError");
    expect(error.message).toContain("AADSTS7000215");
    expect(withoutRequestIds(error.message)).toBe(withoutRequestIds(bareError.message));
    expect(emulator.requestCount({ clientId }) - before).toBe(1);
    await wrapped.close();
  });
});

describe("@azure/identity ManagedIdentityCredential (App Service endpoint on loopback)", () => {
  const saved = {
    endpoint: process.env["IDENTITY_ENDPOINT"],
    header: process.env["IDENTITY_HEADER"],
  };
  afterEach(() => {
    for (const [name, value] of [
      ["IDENTITY_ENDPOINT", saved.endpoint],
      ["IDENTITY_HEADER", saved.header],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  /**
   * A `ManagedIdentityCredential` built while the App Service variables point at the
   * emulator. (msal-node keeps the managed identity source it found for the process, so
   * every credential of this file uses the same endpoint and header.)
   */
  function managedIdentity(): ManagedIdentityCredential {
    process.env["IDENTITY_ENDPOINT"] = emulator.identityEndpoint;
    process.env["IDENTITY_HEADER"] = emulator.identityHeader;
    return new ManagedIdentityCredential(trustEmulator());
  }

  test(`${callers} concurrent callers and a token$ subscriber share one managed identity request`, async () => {
    const before = emulator.requestCount({ scope: vaultScope });
    const credential = reactiveCredential(managedIdentity());

    const tokens = await Promise.all(
      Array.from({ length: callers }, () => credential.getToken(vaultScope)),
    );
    const streamed = await new Promise<AccessToken>((resolve, reject) => {
      const subscription = credential.token$(vaultScope).subscribe({
        next: (token) => {
          resolve(token);
          queueMicrotask(() => subscription.unsubscribe());
        },
        error: reject,
      });
    });

    expect(emulator.requestCount({ scope: vaultScope }) - before).toBe(1);
    expect(emulator.requests.at(-1)).toMatchObject({
      authMethod: "managed-identity",
      status: 200,
      tenant,
    });
    expect(new Set([...tokens, streamed].map((token) => token.token)).size).toBe(1);
    expect(emulator.verifyToken(streamed.token)).toMatchObject({
      aud: "https://vault.azure.net",
      tid: tenant,
    });
    // MSAL's managed identity source sets refreshOn for a token of an hour; it is kept.
    expect(streamed.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3_000_000);
    await credential.close();
  });

  test("a refused managed identity request: the error passes through as bare, with one request", async () => {
    const scope = "https://management.azure.com/.default";
    const bare = managedIdentity();
    const wrapped = reactiveCredential(managedIdentity());
    // One refusal each (a 400 is not retried by @azure/identity's pipeline either).
    emulator.injectFault({
      match: { scope },
      status: 400,
      error: "invalid_request",
      description: "Identity not found.",
      times: 2,
    });

    const bareError = (await bare.getToken(scope).catch((e: unknown) => e)) as Error;
    const before = emulator.requestCount({ scope });
    const error = (await wrapped.getToken(scope).catch((e: unknown) => e)) as Error;
    await pause(1_500);

    expect(error.constructor).toBe(bareError.constructor);
    expect(error.name).toBe(bareError.name);
    expect(withoutRequestIds(error.message)).toBe(withoutRequestIds(bareError.message));
    expect(error.message).toContain("Identity not found.");
    expect(emulator.requestCount({ scope }) - before).toBe(1);
    await wrapped.close();
  });
});

describe("@azure/identity WorkloadIdentityCredential (federated token file)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** `@azure/identity`'s credential for `clientId` with the federated token `file`. */
  function workloadIdentity(clientId: string, file: string): WorkloadIdentityCredential {
    return new WorkloadIdentityCredential({
      tenantId: tenant,
      clientId,
      tokenFilePath: file,
      authorityHost: emulator.authorityHost,
      disableInstanceDiscovery: true,
      ...trustEmulator(),
    });
  }

  function serviceAccountToken(lifetimeSeconds: number): { jwt: string; id: string } {
    const id = randomUUID();
    const jwt = emulator.mintToken({
      audience: "api://AzureADTokenExchange",
      tenant,
      lifetimeSeconds,
      claims: { iss: issuer, sub: "system:serviceaccount:orders:api", jti: id },
    });
    return { jwt, id };
  }

  /** Replaces the file as the kubelet does: a new file renamed over the old one. */
  async function rotate(file: string, jwt: string): Promise<void> {
    const next = `${file}.${randomUUID()}`;
    await writeFile(next, jwt);
    await rename(next, file);
  }

  test("the token file is rotated while a token$ subscriber keeps getting tokens", async () => {
    // Six-second tokens refreshed after two: several refreshes within seconds.
    const { clientId } = registerApp({ tokenLifetimeSeconds: 6, refreshInSeconds: 2 });
    const file = join(directory, `token-${clientId}`);
    // The first service account token expires two minutes after it was issued.
    const first = serviceAccountToken(120);
    await writeFile(file, first.jwt);
    const credential = reactiveCredential(workloadIdentity(clientId, file));
    const seen: AccessToken[] = [];
    const errors: unknown[] = [];
    // Only Date is faked (timers, sockets and the engine's monotonic clock stay real): the
    // wall clock is moved on below, past the first file's expiry.
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });

    const subscription = credential.token$(storageScope).subscribe({
      next: (token) => seen.push(token),
      error: (error: unknown) => errors.push(error),
    });
    await until(() => seen.length >= 2);
    const second = serviceAccountToken(3_600);
    await rotate(file, second.jwt);
    // Six minutes on: the first file's token has expired at the emulator, and
    // @azure/identity reads the file again (it keeps what it read for 5 minutes:
    // readFileContents in workloadIdentityCredential.js).
    vi.setSystemTime(Date.now() + 6 * 60_000);
    const afterRotation = seen.length;
    await until(() => seen.length >= afterRotation + 2);
    subscription.unsubscribe();

    const requests = emulator.requests.filter((request) => request.clientId === clientId);
    expect(errors).toEqual([]);
    expect(requests.every((request) => request.status === 200)).toBe(true);
    expect(requests.every((request) => request.authMethod === "assertion")).toBe(true);
    expect(requests[0]?.clientAssertionId).toBe(first.id);
    expect(requests.at(-1)?.clientAssertionId).toBe(second.id);
    expect(new Set(seen.map((token) => token.token)).size).toBe(seen.length);
    for (const token of seen) {
      expect(emulator.verifyToken(token.token)).toMatchObject({ appid: clientId, tid: tenant });
    }
    await credential.close();
  });

  test("an assertion from an issuer the emulator does not trust: refused once, passed through", async () => {
    const { clientId } = registerApp();
    const file = join(directory, `untrusted-${clientId}`);
    await writeFile(
      file,
      emulator.mintToken({
        audience: "api://AzureADTokenExchange",
        tenant,
        claims: { iss: "https://evil.example/", sub: "system:serviceaccount:x:y" },
      }),
    );
    const credential = reactiveCredential(workloadIdentity(clientId, file));

    const error = (await credential.getToken(storageScope).catch((e: unknown) => e)) as Error;
    await pause(1_500);

    expect(error.name).toBe("AuthenticationRequiredError");
    expect(error.message).toContain("AADSTS70021");
    expect(emulator.requestCount({ clientId })).toBe(1);
    await credential.close();
  });
});
