/**
 * Hostile input through the public surface, end to end: every value is refused before any
 * HTTP request leaves the process (counted on Node's `http.client.request.start`
 * diagnostics channel, not only at the emulator), with a typed error naming the argument.
 * `test/credential/validation.test.ts` covers the validators one by one; this file proves
 * the credential calls them on every path (constructor, getToken, token$).
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { firstValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClientSecretCredential,
  type ClientSecretCredentialOptions,
} from "../../src/credential/index.js";
import { isRxIdentityError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const clientId = "hostile-app";
const secret = "CANARY-hostile-5ecret-0b7e";
const scope = "https://storage.azure.com/.default";

let emulator: EntraEmulator;
let outgoing = 0;
const countRequest = (): void => {
  outgoing += 1;
};

beforeAll(async () => {
  emulator = await startEntraEmulator();
  emulator.registerApplication({ clientId, clientSecret: secret });
  subscribe("http.client.request.start", countRequest);
});
afterAll(async () => {
  unsubscribe("http.client.request.start", countRequest);
  await emulator.stop();
});
afterEach(() => {
  emulator.clearRequests();
  outgoing = 0;
});

function credential(options: ClientSecretCredentialOptions = {}): ClientSecretCredential {
  return new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
    additionallyAllowedTenants: ["*"],
    ...options,
  });
}

/** The error a call produced, synchronously thrown or rejected. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectRefused(error: unknown, code: string, names: string | RegExp): void {
  expect(isRxIdentityError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  expect((error as Error).message).toMatch(names);
  expect((error as Error).message).not.toContain(secret);
}

function expectNoRequest(): void {
  expect(emulator.requests).toHaveLength(0);
  expect(outgoing).toBe(0);
}

const hostileTenants: [string, string][] = [
  ["path traversal", "../evil"],
  ["deeper traversal", `${tenant}/../../common`],
  ["a host", "evil.com/"],
  ["a host and path", "evil.com/oauth2/v2.0/token?x="],
  ["URL-encoded slash", "evil%2fpath"],
  ["URL-encoded dot-dot", "%2e%2e"],
  ["userinfo", "user@evil.com"],
  ["Cyrillic look-alike", "\u0430datum.onmicrosoft.com"],
  ["fullwidth look-alike", "\uff45vil.com"],
  ["division slash", "evil.com\u2215x"],
  ["a fragment", "evil.com#x"],
  ["a query", "evil.com?x=1"],
  ["a leading dot", ".evil.com"],
  ["dot-dot inside", "evil..com"],
  ["a space", "a tenant"],
  ["a newline", "tenant\nX-Injected: 1"],
  ["a NUL", "tenant\u0000"],
  ["overlong", "a".repeat(300)],
];

describe("tenant ids", () => {
  it.each(hostileTenants)("%s is refused in the constructor", async (_name, tenantId) => {
    const error = await failure(
      () =>
        new ClientSecretCredential(tenantId, clientId, secret, {
          authorityHost: emulator.authorityHost,
        }),
    );
    expectRefused(error, "ERR_INVALID_ARGUMENT", /tenantId/);
    expectNoRequest();
  });

  it.each(hostileTenants)(
    "%s is refused per request by getToken and token$, even with every tenant allowed",
    async (_name, tenantId) => {
      const c = credential();
      expectRefused(
        await failure(() => c.getToken(scope, { tenantId })),
        "ERR_INVALID_ARGUMENT",
        /tenantId/,
      );
      expectRefused(
        await failure(() => firstValueFrom(c.token$(scope, { tenantId }))),
        "ERR_INVALID_ARGUMENT",
        /tenantId/,
      );
      await c.close();
      expectNoRequest();
    },
  );

  it("an allowed-tenants entry with a path trick is refused, naming its index", async () => {
    const error = await failure(() => credential({ additionallyAllowedTenants: ["*", "../evil"] }));
    expectRefused(error, "ERR_INVALID_ARGUMENT", /additionallyAllowedTenants\[1\]/);
    expectNoRequest();
  });
});

describe("authority hosts", () => {
  it.each([
    ["http", "http://127.0.0.1:1"],
    ["relative", "/common"],
    ["scheme-less", "login.microsoftonline.com"],
    ["protocol-relative", "//evil.com"],
    ["credential-bearing", "https://admin:hunter2@login.microsoftonline.com"],
    ["user only", "https://admin@login.microsoftonline.com"],
    ["a query", "https://login.microsoftonline.com?x=https://evil.com"],
    ["a fragment", "https://login.microsoftonline.com#evil"],
    ["javascript:", "javascript:alert(1)"],
    ["file:", "file:///etc/passwd"],
    ["empty", ""],
  ])("%s is refused in the constructor, never echoing credentials", async (_name, host) => {
    const error = await failure(() => credential({ authorityHost: host }));
    expectRefused(error, "ERR_INVALID_ARGUMENT", /authorityHost/);
    expect((error as Error).message).not.toContain("hunter2");
    expectNoRequest();
  });

  it("a hostile AZURE_AUTHORITY_HOST is refused the same way", async () => {
    const error = await failure(() =>
      ClientSecretCredential.fromEnvironment(
        {},
        {
          AZURE_TENANT_ID: tenant,
          AZURE_CLIENT_ID: clientId,
          AZURE_CLIENT_SECRET: secret,
          AZURE_AUTHORITY_HOST: "https://u:hunter2@evil.com",
        },
      ),
    );
    expectRefused(error, "ERR_INVALID_ARGUMENT", /authorityHost/);
    expect((error as Error).message).not.toContain("hunter2");
  });
});

describe("scopes", () => {
  it.each([
    ["whitespace inside", "https://storage.azure.com/.default openid"],
    ["a tab", "https://storage.azure.com/.default\topenid"],
    ["a newline", "https://storage.azure.com/.default\nopenid"],
    ["a NUL", "https://storage.azure.com/.default\u0000"],
    ["a C1 control", "https://storage.azure.com/\u0085.default"],
    ["a Unicode space", "https://storage.azure.com/\u2003.default"],
    ["empty", ""],
    ["only spaces", "   "],
    ["overlong", `https://${"a".repeat(3_000)}/.default`],
  ])("%s is refused by getToken and token$", async (_name, bad) => {
    const c = credential();
    for (const scopes of [bad, [scope, bad]]) {
      expectRefused(await failure(() => c.getToken(scopes)), "ERR_INVALID_ARGUMENT", /scopes/);
      expectRefused(
        await failure(() => firstValueFrom(c.token$(scopes))),
        "ERR_INVALID_ARGUMENT",
        /scopes/,
      );
    }
    await c.close();
    expectNoRequest();
  });

  it("an empty list and a non-string are refused", async () => {
    const c = credential();
    expectRefused(await failure(() => c.getToken([])), "ERR_INVALID_ARGUMENT", /scopes/);
    expectRefused(
      await failure(() => c.getToken([42 as unknown as string])),
      "ERR_INVALID_ARGUMENT",
      /scopes\[0\]/,
    );
    await c.close();
    expectNoRequest();
  });
});

describe("claims", () => {
  it.each([
    ["an array", "[1,2]"],
    ["null", "null"],
    ["a number", "42"],
    ["a JSON string", '"access_token"'],
    ["broken JSON", '{"access_token":'],
    ["over the size bound", JSON.stringify({ access_token: { x: "a".repeat(17 * 1024) } })],
  ])("%s is refused by getToken and token$", async (_name, claims) => {
    const c = credential();
    expectRefused(
      await failure(() => c.getToken(scope, { claims })),
      "ERR_INVALID_ARGUMENT",
      /claims/,
    );
    expectRefused(
      await failure(() => firstValueFrom(c.token$(scope, { claims }))),
      "ERR_INVALID_ARGUMENT",
      /claims/,
    );
    await c.close();
    expectNoRequest();
  });
});

describe("absurd refresh options", () => {
  it.each([
    ["forcedWindowMs", -1],
    ["refreshBeforeExpiryMs", Number.NaN],
    ["retryCapMs", Number.POSITIVE_INFINITY],
    ["retryBaseMs", Number.NEGATIVE_INFINITY],
    ["retryWithoutTokenMs", -0.5],
    ["permanentFailureBackoffMs", "60000"],
    ["jitterRatio", 2],
    ["forcedWindowMaxFraction", -0.1],
  ])("%s = %s is refused in the constructor, naming the option", async (name, value) => {
    const error = await failure(() => credential({ refresh: { [name]: value } }));
    expectRefused(error, "ERR_INVALID_ARGUMENT", new RegExp(`\`${name}\``));
    expectNoRequest();
  });
});

describe("a flood of distinct claims", () => {
  it("1,500 distinct claims requests leave memory where it was (idle claims keys are forgotten)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const c = credential();
    const claimsOf = (i: number): string =>
      JSON.stringify({ access_token: { acrs: { essential: true, value: `c${i}` } } });
    const burst = async (from: number, count: number): Promise<void> => {
      for (let i = from; i < from + count; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) => c.getToken(scope, { claims: claimsOf(i + j) })),
        );
      }
    };
    await burst(0, 200);
    // The emulator's request log lives in this process too: empty it before each reading.
    emulator.clearRequests();
    gc();
    const before = process.memoryUsage().heapUsed;
    await burst(200, 1_500);
    // Every claims request went to the service (never served from memory).
    expect(emulator.requestCount()).toBe(1_500);
    emulator.clearRequests();
    gc();
    const after = process.memoryUsage().heapUsed;
    // Kept per key, 1,500 entries with their ~1 KB tokens, claims, keys and Promises would
    // hold well over 2 MB; what remains is measurement noise (JIT, MSAL telemetry).
    expect(after - before).toBeLessThan(1.5 * 1024 * 1024);
    await c.close();
  });
});
