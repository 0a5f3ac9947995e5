import { describe, expect, it } from "vitest";
import { deriveKey } from "../../src/credential/key.js";

describe("deriveKey", () => {
  it("lower-cases the tenant and trims, de-duplicates and sorts scopes", () => {
    const a = deriveKey(
      "Contoso.COM",
      [" b/.default", "a/.default", "b/.default"],
      undefined,
      false,
    );
    const b = deriveKey("contoso.com", ["a/.default", "b/.default"], undefined, false);
    expect(a.id).toBe(b.id);
    expect(a.scopes).toEqual(["a/.default", "b/.default"]);
    expect(a.tenant).toBe("contoso.com");
  });

  it("separates CAE from non-CAE, claims from none, and tenants", () => {
    const ids = new Set([
      deriveKey("t", ["s"], undefined, false).id,
      deriveKey("t", ["s"], undefined, true).id,
      deriveKey("t", ["s"], "{}", false).id,
      deriveKey("u", ["s"], undefined, false).id,
    ]);
    expect(ids.size).toBe(4);
  });

  it("cannot be forged by separators inside scopes", () => {
    const one = deriveKey("t", ['a","b'], undefined, false);
    const two = deriveKey("t", ["a", "b"], undefined, false);
    expect(one.id).not.toBe(two.id);
    const three = deriveKey("t", ["a|b"], undefined, false);
    const four = deriveKey("t", ["a", "b"], undefined, false);
    expect(three.id).not.toBe(four.id);
  });

  it("marks claims keys short-lived and keeps claims as given", () => {
    const claims = '{"access_token":{"xms_cc":{"values":["cp1"]}}}';
    const key = deriveKey("t", ["s"], claims, true);
    expect(key.shortLived).toBe(true);
    expect(key.claims).toBe(claims);
    expect(deriveKey("t", ["s"], undefined, true).shortLived).toBe(false);
  });
});
