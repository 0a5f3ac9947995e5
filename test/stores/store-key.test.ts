import { describe, expect, test } from "vitest";
import {
  credentialIdOf,
  partitionOf,
  storeKeyOf,
  type StoreKeyFields,
} from "../../src/stores/index.js";

const SECRET = "s3cr3t~Value.With-Symbols_0123456789";

const base: StoreKeyFields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "11111111-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://storage.azure.com/.default"],
};

describe("storeKeyOf", () => {
  test("is a partition prefix and a base64url SHA-256, with nothing readable and never the secret", () => {
    const key = storeKeyOf(base);

    expect(key).toMatch(/^nocae\.[A-Za-z0-9_-]{43}$/);
    for (const part of [base.clientId, base.tenantId, "storage", SECRET]) {
      expect(key).not.toContain(part);
    }
  });

  test("differs when any identifying field differs", () => {
    const variants: StoreKeyFields[] = [
      base,
      { ...base, authorityHost: "https://login.microsoftonline.us" },
      { ...base, clientId: "11111111-2222-3333-4444-555555555556" },
      { ...base, tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeef" },
      { ...base, scopes: ["https://vault.azure.net/.default"] },
      { ...base, claims: '{"access_token":{"nbf":{"essential":true,"value":"1"}}}' },
      { ...base, enableCae: true },
    ];

    const keys = new Set(variants.map(storeKeyOf));

    expect(keys.size).toBe(variants.length);
  });

  test("ignores what does not change the token: scope order, duplicates, tenant and host case, a trailing slash", () => {
    const same = storeKeyOf({
      ...base,
      authorityHost: "HTTPS://Login.MicrosoftOnline.com/",
      tenantId: base.tenantId.toUpperCase(),
      scopes: [" b ", "a", "b"],
    });

    expect(same).toBe(storeKeyOf({ ...base, scopes: ["a", "b"] }));
  });

  test("CAE keys live in the cae partition", () => {
    expect(partitionOf(storeKeyOf({ ...base, enableCae: true }))).toBe("cae");
    expect(partitionOf(storeKeyOf(base))).toBe("nocae");
    expect(partitionOf("something-else")).toBeUndefined();
  });

  test("credentialIdOf names an app at an authority, not a tenant or a scope", () => {
    const id = credentialIdOf(base);

    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(credentialIdOf({ ...base, clientId: "other" })).not.toBe(id);
    expect(id).not.toContain(base.clientId);
  });
});
