import { describe, expect, it } from "vitest";
import {
  normalizeAuthorityHost,
  validateAllowedTenants,
  validateClaims,
  validateClientId,
  validateClientSecret,
  validateScopes,
  validateTenantId,
} from "../../src/credential/validation.js";
import { isCredentialUnavailableError, isInvalidArgumentError } from "../../src/errors/index.js";

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("validateTenantId", () => {
  it.each([
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "contoso.onmicrosoft.com",
    "CONTOSO.com",
    "organizations",
  ])("accepts %s", (tenant) => {
    expect(() => validateTenantId(tenant, "tenantId")).not.toThrow();
  });

  it.each([
    ["path traversal", "../evil"],
    ["a dot-dot alone", ".."],
    ["a host with a path", "evil.com/"],
    ["an encoded slash", "tenant%2fevil"],
    ["a userinfo separator", "user@evil.com"],
    ["a Cyrillic look-alike", "cоntoso.com"],
    ["a full-width digit", "１２３"],
    ["whitespace", "tenant a"],
    ["a newline", "tenant\nforged"],
    ["a query", "tenant?x=1"],
    ["empty", ""],
    ["over-long", "a".repeat(300)],
  ])("rejects %s with InvalidArgumentError naming the argument", (_name, tenant) => {
    const error = errorOf(() => validateTenantId(tenant, "tenantId"));
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toMatch(/tenantId/);
    expect((error as Error).message).not.toContain("\n");
  });

  it("rejects non-strings", () => {
    expect(isInvalidArgumentError(errorOf(() => validateTenantId(42, "tenantId")))).toBe(true);
  });
});

describe("validateClientId and validateClientSecret", () => {
  it("rejects a missing client id as CredentialUnavailableError", () => {
    expect(isCredentialUnavailableError(errorOf(() => validateClientId("")))).toBe(true);
    expect(isCredentialUnavailableError(errorOf(() => validateClientId(undefined)))).toBe(true);
  });

  it("rejects a client id with control characters", () => {
    expect(isInvalidArgumentError(errorOf(() => validateClientId("app\r\nX: y")))).toBe(true);
  });

  it("rejects a missing secret and never echoes a given one", () => {
    expect(isCredentialUnavailableError(errorOf(() => validateClientSecret("")))).toBe(true);
    const error = errorOf(() => validateClientSecret(12345));
    expect((error as Error).message).toMatch(/clientSecret/);
    expect((error as Error).message).not.toContain("12345");
  });
});

describe("normalizeAuthorityHost", () => {
  it("strips a trailing slash", () => {
    expect(normalizeAuthorityHost("https://login.microsoftonline.com/")).toBe(
      "https://login.microsoftonline.com",
    );
    expect(normalizeAuthorityHost("https://127.0.0.1:8443")).toBe("https://127.0.0.1:8443");
  });

  it.each([
    ["http", "http://login.microsoftonline.com"],
    ["relative", "login.microsoftonline.com"],
    ["a query", "https://login.microsoftonline.com/?x=1"],
    ["a fragment", "https://login.microsoftonline.com/#x"],
    ["empty", ""],
  ])("rejects %s", (_name, host) => {
    const error = errorOf(() => normalizeAuthorityHost(host));
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toMatch(/authorityHost/);
  });

  it("rejects credentials in the URL without echoing them", () => {
    const error = errorOf(() => normalizeAuthorityHost("https://user:hunter2@login.example.com"));
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).not.toContain("hunter2");
  });
});

describe("validateScopes", () => {
  it("accepts one scope string or an array, trimmed", () => {
    expect(validateScopes(" https://storage.azure.com/.default ")).toEqual([
      "https://storage.azure.com/.default",
    ]);
    expect(validateScopes(["a/.default", "b/.default"])).toEqual(["a/.default", "b/.default"]);
  });

  it.each([
    ["an empty array", []],
    ["an empty string", ""],
    ["inner whitespace", "https://storage.azure.com/.default https://vault.azure.net/.default"],
    ["a control character", "https://storage.azure.com/.default\u0000"],
    ["a non-breaking space", "https://storage.azure.com/\u00a0.default"],
    ["a non-string element", [42]],
  ])("rejects %s", (_name, scopes) => {
    const error = errorOf(() => validateScopes(scopes));
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toMatch(/scopes/);
  });
});

describe("validateClaims", () => {
  it("accepts a JSON object and treats empty as none", () => {
    const claims = '{"access_token":{"nbf":{"essential":true,"value":"1"}}}';
    expect(validateClaims(claims)).toBe(claims);
    expect(validateClaims("")).toBeUndefined();
    expect(validateClaims(undefined)).toBeUndefined();
  });

  it.each([
    ["not JSON", "{nope"],
    ["an array", "[1,2]"],
    ["null", "null"],
    ["a string", '"x"'],
    ["too large", JSON.stringify({ a: "x".repeat(17_000) })],
  ])("rejects %s", (_name, claims) => {
    const error = errorOf(() => validateClaims(claims));
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toMatch(/claims/);
  });
});

describe("validateAllowedTenants", () => {
  it("keeps * and validates every other tenant", () => {
    expect(validateAllowedTenants(["*", "contoso.com"])).toEqual(["*", "contoso.com"]);
    const error = errorOf(() => validateAllowedTenants(["ok", "../bad"]));
    expect((error as Error).message).toMatch(/additionallyAllowedTenants\[1\]/);
  });
});
