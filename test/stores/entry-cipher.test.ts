import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { createEntryCipher, storeKeyOf } from "../../src/stores/index.js";

const SECRET = "s3cr3t~Value.With-Symbols_0123456789";
const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "11111111-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://storage.azure.com/.default"],
};
const KEY = storeKeyOf(fields);
const OTHER_KEY = storeKeyOf({ ...fields, tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeef" });
const ENTRY = {
  token: "eyJ0eXAiOiJKV1QifQ.payload.signature",
  expiresOnTimestamp: 1_900_000_000_000,
  refreshAfterTimestamp: 1_899_998_000_000,
};

function flipByte(sealed: string, index: number): string {
  const raw = Buffer.from(sealed.slice(3), "base64url");
  raw[index] = raw[index]! ^ 0x01;
  return `v1.${raw.toString("base64url")}`;
}

describe("createEntryCipher", () => {
  test("round-trips an entry, and the sealed form shows neither token nor secret", () => {
    const cipher = createEntryCipher(SECRET);

    const sealed = cipher.seal(KEY, ENTRY);

    expect(cipher.open(KEY, sealed)).toEqual({ ok: true, entry: ENTRY });
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain("eyJ0eXAi");
    expect(Buffer.from(sealed.slice(3), "base64url").toString("latin1")).not.toContain("payload");
    expect(sealed).not.toContain(SECRET);
  });

  test("uses a fresh IV for every entry", () => {
    const cipher = createEntryCipher(SECRET);

    const a = cipher.seal(KEY, ENTRY);
    const b = cipher.seal(KEY, ENTRY);

    expect(a).not.toBe(b);
    expect(a.slice(3, 19)).not.toBe(b.slice(3, 19));
  });

  test("rejects a tampered IV, ciphertext or tag", () => {
    const cipher = createEntryCipher(SECRET);
    const sealed = cipher.seal(KEY, ENTRY);
    const length = Buffer.from(sealed.slice(3), "base64url").length;

    for (const index of [0, 11, 12, 20, length - 17, length - 1]) {
      expect(cipher.open(KEY, flipByte(sealed, index))).toEqual({
        ok: false,
        reason: "unauthentic",
      });
    }
  });

  test("rejects a truncated entry", () => {
    const cipher = createEntryCipher(SECRET);
    const sealed = cipher.seal(KEY, ENTRY);

    expect(cipher.open(KEY, sealed.slice(0, sealed.length - 4)).ok).toBe(false);
    expect(cipher.open(KEY, sealed.slice(0, 20))).toEqual({ ok: false, reason: "malformed" });
    expect(cipher.open(KEY, "v1.")).toEqual({ ok: false, reason: "malformed" });
  });

  test("rejects an entry sealed with another secret", () => {
    const sealed = createEntryCipher(SECRET).seal(KEY, ENTRY);

    expect(createEntryCipher("another secret").open(KEY, sealed)).toEqual({
      ok: false,
      reason: "unauthentic",
    });
  });

  test("rejects an entry moved to another key (the key is authenticated data)", () => {
    const cipher = createEntryCipher(SECRET);

    const sealed = cipher.seal(KEY, ENTRY);

    expect(cipher.open(OTHER_KEY, sealed)).toEqual({ ok: false, reason: "unauthentic" });
  });

  test("rejects foreign formats", () => {
    const cipher = createEntryCipher(SECRET);

    for (const value of ["", "garbage", "v2.AAAA", "v1.!!!!", JSON.stringify(ENTRY)]) {
      expect(cipher.open(KEY, value)).toEqual({ ok: false, reason: "malformed" });
    }
  });

  test("does not expose the secret or the derived key", () => {
    const cipher = createEntryCipher(SECRET);

    expect(inspect(cipher, { showHidden: true, depth: 5 })).not.toContain(SECRET);
    expect(JSON.stringify(cipher)).not.toContain(SECRET);
    expect(() => createEntryCipher("")).toThrow(/non-empty/);
  });
});
