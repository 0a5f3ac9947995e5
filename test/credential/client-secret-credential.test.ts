import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { isTokenCredential, type AccessToken } from "@azure/core-auth";
import { AzureLogger, setLogLevel } from "@azure/logger";
import { firstValueFrom, lastValueFrom, toArray } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClientSecretCredential,
  type ClientSecretCredentialOptions,
} from "../../src/credential/index.js";
import {
  isAbortError,
  isAuthenticationError,
  isCredentialUnavailableError,
  type AuthenticationError,
} from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenantA = "a0000000-0000-4000-8000-00000000000a";
const tenantB = "b0000000-0000-4000-8000-00000000000b";
const storage = "https://storage.azure.com/.default";
const vault = "https://vault.azure.net/.default";
const canary = "CANARY-secret-7f3a9c";

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

/** A fresh app registration and a credential for it, so request counts are per test. */
function setup(options: ClientSecretCredentialOptions = {}): {
  credential: ClientSecretCredential;
  clientId: string;
  count: (filter?: Parameters<EntraEmulator["requestCount"]>[0]) => number;
} {
  const clientId = `app-${++appCounter}-${Date.now()}`;
  emulator.registerApplication({ clientId, clientSecret: canary, tenants: "*" });
  const credential = new ClientSecretCredential(tenantA, clientId, canary, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
    refresh: { retryBaseMs: 10, retryCapMs: 50 },
    ...options,
  });
  credentials.push(credential);
  return {
    credential,
    clientId,
    count: (filter = {}) => emulator.requestCount({ clientId, ...filter }),
  };
}

function decode(token: AccessToken): Record<string, unknown> {
  return JSON.parse(
    Buffer.from(token.token.split(".")[1]!, "base64url").toString("utf8"),
  ) as Record<string, unknown>;
}

describe("ClientSecretCredential against the emulator (real MSAL over HTTPS)", () => {
  it("is a TokenCredential and returns a Bearer token with refreshAfterTimestamp", async () => {
    const { credential } = setup();
    expect(isTokenCredential(credential)).toBe(true);
    const token = await credential.getToken(storage);
    expect(token.tokenType).toBe("Bearer");
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now());
    expect(token.refreshAfterTimestamp).toBeGreaterThan(Date.now());
    expect(decode(token)).toMatchObject({ aud: "https://storage.azure.com", tid: tenantA });
  });

  it("returns a cached token with no request, and 1,000 concurrent calls make one request", async () => {
    const { credential, count } = setup();
    const tokens = await Promise.all(
      Array.from({ length: 1_000 }, () => credential.getToken(vault)),
    );
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
    expect(count()).toBe(1);
    const again = await credential.getToken([vault]);
    expect(again.token).toBe(tokens[0]!.token);
    expect(count()).toBe(1);
  });

  it("keeps scopes, tenants, claims and CAE on separate keys", async () => {
    const { credential, count } = setup({ additionallyAllowedTenants: [tenantB] });
    const claims = '{"access_token":{"nbf":{"essential":true,"value":"1"}}}';
    const a = await credential.getToken(storage);
    const b = await credential.getToken(storage, { tenantId: tenantB });
    const v = await credential.getToken(vault);
    const cae = await credential.getToken(storage, { enableCae: true });
    const withClaims = await credential.getToken(storage, { claims });
    expect(new Set([a, b, v, cae, withClaims].map((t) => t.token)).size).toBe(5);
    expect(count()).toBe(5);
    expect(decode(a).tid).toBe(tenantA);
    expect(decode(b).tid).toBe(tenantB);
    // A tenant-B token is never returned for tenant A, however the calls interleave.
    const [againA, againB] = await Promise.all([
      credential.getToken(storage),
      credential.getToken(storage, { tenantId: tenantB }),
    ]);
    expect(decode(againA).tid).toBe(tenantA);
    expect(decode(againB).tid).toBe(tenantB);
    expect((await credential.getToken(storage)).token).toBe(a.token);
  });

  it("sends cp1 for CAE requests only", async () => {
    const { credential, clientId } = setup();
    await credential.getToken(storage, { enableCae: true });
    await credential.getToken(storage);
    const records = emulator.requests.filter((r) => r.clientId === clientId);
    expect(records.map((r) => r.clientCapabilities)).toEqual([["cp1"], []]);
  });

  it("sends every claims request to the server", async () => {
    const { credential, count } = setup();
    const claims = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}';
    await credential.getToken(storage);
    await credential.getToken(storage, { claims });
    await credential.getToken(storage, { claims });
    expect(count({ claims })).toBe(2);
    expect(count()).toBe(3);
  });

  it("refuses a tenant that is not allowed before any request, naming additionallyAllowedTenants", async () => {
    const { credential, count } = setup();
    const error = await credential
      .getToken(storage, { tenantId: tenantB })
      .catch((e: unknown) => e);
    expect(isCredentialUnavailableError(error)).toBe(true);
    expect((error as Error).message).toContain("additionallyAllowedTenants");
    expect(count()).toBe(0);
  });

  it('allows any tenant with "*", and returns to the default tenant afterwards', async () => {
    const { credential } = setup({ additionallyAllowedTenants: ["*"] });
    expect(decode(await credential.getToken(storage, { tenantId: tenantB })).tid).toBe(tenantB);
    expect(decode(await credential.getToken(storage)).tid).toBe(tenantA);
  });

  it("uses the default tenant for every request when AZURE_IDENTITY_DISABLE_MULTITENANTAUTH is set", async () => {
    const { credential, count } = setup();
    process.env["AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"] = "true";
    try {
      const token = await credential.getToken(storage, { tenantId: tenantB });
      expect(decode(token).tid).toBe(tenantA);
      expect(count({ tenant: tenantB })).toBe(0);
    } finally {
      delete process.env["AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"];
    }
  });

  it("rejects hostile input before any request", async () => {
    const { credential, count } = setup({ additionallyAllowedTenants: ["*"] });
    for (const call of [
      () => credential.getToken("bad scope"),
      () => credential.getToken([]),
      () => credential.getToken(storage, { tenantId: "../evil" }),
      () => credential.getToken(storage, { claims: "[1]" }),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect((error as { code: string }).code).toBe("ERR_INVALID_ARGUMENT");
    }
    expect(count()).toBe(0);
  });

  describe("permanent errors are typed after exactly one request", () => {
    it.each([
      ["wrong secret", 401, "invalid_client", 7000215],
      ["expired secret", 401, "invalid_client", 7000222],
      ["unknown client", 400, "unauthorized_client", 700016],
      ["unknown tenant", 400, "invalid_request", 90002],
      ["invalid scope", 400, "invalid_scope", 70011],
    ])("%s", async (_name, status, error, aadsts) => {
      const { credential, clientId, count } = setup();
      emulator.injectFault({ match: { clientId }, status, error, aadsts, times: Infinity });
      const failure = await credential.getToken(storage).catch((e: unknown) => e);
      expect(isAuthenticationError(failure)).toBe(true);
      const typed = failure as AuthenticationError;
      expect(typed.statusCode).toBe(status);
      expect(typed.transient).toBe(false);
      expect(typed.errorResponse.error).toBe(error);
      expect(typed.errorResponse.errorCodes).toEqual([aadsts]);
      expect(typed.errorResponse.correlationId).toMatch(/\S/);
      expect(typed.message).toContain(`AADSTS${aadsts}`);
      expect(count()).toBe(1);
      expect(inspect(failure, { depth: 10 })).not.toContain(canary);
      expect(JSON.stringify(failure)).not.toContain(canary);
    });

    it("the real wrong-secret path (no fault injected)", async () => {
      const clientId = `app-wrong-${Date.now()}`;
      emulator.registerApplication({ clientId, clientSecret: "the-right-one", tenants: "*" });
      const credential = new ClientSecretCredential(tenantA, clientId, canary, {
        authorityHost: emulator.authorityHost,
        ca: emulator.caCertificate,
      });
      credentials.push(credential);
      const failure = (await credential
        .getToken(storage)
        .catch((e: unknown) => e)) as AuthenticationError;
      expect(failure.errorResponse.errorCodes).toEqual([7000215]);
      expect(emulator.requestCount({ clientId })).toBe(1);
      expect(inspect(failure, { depth: 10 })).not.toContain(canary);
    });
  });

  describe("transient errors are retried and then succeed", () => {
    it.each([
      ["500", { status: 500, error: "server_error", aadsts: 50000 }],
      ["503", { status: 503, error: "temporarily_unavailable", aadsts: 50001 }],
      ["429", { status: 429, error: "too_many_requests", aadsts: 50196 }],
      ["408", { status: 408, error: "request_timeout", aadsts: 50000 }],
      ["a dropped connection", { drop: true as const }],
    ])("%s", async (_name, fault) => {
      const { credential, clientId, count } = setup();
      emulator.injectFault({ match: { clientId }, times: 2, ...fault });
      const token = await credential.getToken(storage);
      expect(token.token).toMatch(/^ey/);
      expect(count()).toBe(3);
    });

    it("honours Retry-After (MSAL's 60 s throttle cache is defeated)", async () => {
      const { credential, clientId } = setup();
      emulator.injectFault({
        match: { clientId },
        status: 429,
        error: "too_many_requests",
        aadsts: 50196,
        retryAfter: 1,
      });
      const token = await credential.getToken(storage);
      expect(token.token).toMatch(/^ey/);
      const records = emulator.requests.filter((r) => r.clientId === clientId);
      expect(records.map((r) => r.status)).toEqual([429, 200]);
      expect(records[1]!.at - records[0]!.at).toBeGreaterThanOrEqual(900);
    });
  });

  it("a missing expiry or a malformed body is an AuthenticationError", async () => {
    const { credential, clientId } = setup();
    emulator.injectFault({ match: { clientId }, omitExpiresIn: true, times: Infinity });
    const noExpiry = await credential.getToken(storage).catch((e: unknown) => e);
    expect(isAuthenticationError(noExpiry)).toBe(true);
    emulator.clearFaults();
    emulator.injectFault({ match: { clientId }, malformedJson: true, times: Infinity });
    const malformed = await credential.getToken(vault).catch((e: unknown) => e);
    expect(isAuthenticationError(malformed)).toBe(true);
  });

  it("abort rejects promptly with AbortError", async () => {
    const { credential, clientId } = setup();
    emulator.injectFault({ match: { clientId }, hang: true });
    const controller = new AbortController();
    const pending = credential.getToken(storage, { abortSignal: controller.signal });
    await emulator.waitForRequests(emulator.requests.length + 1);
    const started = performance.now();
    controller.abort();
    const error = await pending.catch((e: unknown) => e);
    expect(isAbortError(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("close() completes streams and later calls fail clearly", async () => {
    const { credential } = setup();
    const values = lastValueFrom(credential.token$(storage).pipe(toArray()));
    await firstValueFrom(credential.token$(storage));
    await credential.close();
    expect((await values).length).toBeGreaterThanOrEqual(1);
    const error = await credential.getToken(storage).catch((e: unknown) => e);
    expect(isCredentialUnavailableError(error)).toBe(true);
    expect((error as Error).message).toMatch(/closed/i);
  });

  it("never shows the secret in util.inspect, JSON.stringify or verbose logs", async () => {
    const lines: string[] = [];
    const original = AzureLogger.log;
    AzureLogger.log = (...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    };
    setLogLevel("verbose");
    try {
      const { credential, clientId } = setup();
      const token = await credential.getToken(storage);
      emulator.injectFault({
        match: { clientId },
        status: 401,
        error: "invalid_client",
        aadsts: 7000215,
        times: Infinity,
      });
      await credential.getToken(vault).catch(() => undefined);
      expect(inspect(credential, { depth: 10, showHidden: true })).not.toContain(canary);
      expect(JSON.stringify(credential)).not.toContain(canary);
      expect(JSON.stringify(credential)).toContain(clientId);
      const all = lines.join("\n");
      expect(all).toMatch(/acquired/);
      expect(all).not.toContain(canary);
      expect(all).not.toContain(token.token);
    } finally {
      AzureLogger.log = original;
      setLogLevel(undefined);
    }
  });

  it("a child node script that calls getToken once exits at once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rx-identity-child-"));
    const clientId = `app-child-${Date.now()}`;
    emulator.registerApplication({ clientId, clientSecret: canary, tenants: "*" });
    const script = join(dir, "child.mts");
    const entry = new URL("../../src/credential/index.ts", import.meta.url).href;
    writeFileSync(
      script,
      `import { ClientSecretCredential } from ${JSON.stringify(entry)};
const c = new ClientSecretCredential(${JSON.stringify(tenantA)}, ${JSON.stringify(clientId)}, process.env.SECRET, {
  authorityHost: process.env.AUTHORITY, ca: process.env.CA_PEM });
const t = await c.getToken(${JSON.stringify(storage)});
console.log(t.tokenType);
`,
    );
    try {
      const started = performance.now();
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        env: {
          ...process.env,
          SECRET: canary,
          AUTHORITY: emulator.authorityHost,
          CA_PEM: emulator.caCertificate,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const killer = (): void => {
        child.kill();
      };
      process.once("exit", killer);
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill(), 20_000);
        child.on("exit", (exitCode) => {
          clearTimeout(timer);
          resolve(exitCode);
        });
      });
      process.off("exit", killer);
      expect(out).toContain("Bearer");
      expect(code).toBe(0);
      // Node startup plus tsx plus one request: seconds, not the 30 s socket or refresh timers.
      expect(performance.now() - started).toBeLessThan(15_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
