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

/** `v1.<key id>.` and the sealed bytes after it. */
function parts(sealed: string): { head: string; raw: Buffer } {
  const dot = sealed.indexOf(".", 3);
  return { head: sealed.slice(0, dot + 1), raw: Buffer.from(sealed.slice(dot + 1), "base64url") };
}

function flipByte(sealed: string, index: number): string {
  const { head, raw } = parts(sealed);
  raw[index] = raw[index]! ^ 0x01;
  return `${head}${raw.toString("base64url")}`;
}

describe("createEntryCipher", () => {
  test("round-trips an entry, and the sealed form shows neither token nor secret", () => {
    const cipher = createEntryCipher(SECRET);

    const sealed = cipher.seal(KEY, ENTRY);

    expect(cipher.open(KEY, sealed)).toEqual({ ok: true, entry: ENTRY });
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain("eyJ0eXAi");
    expect(parts(sealed).raw.toString("latin1")).not.toContain("payload");
    expect(sealed).not.toContain(SECRET);
  });

  test("uses a fresh IV for every entry", () => {
    const cipher = createEntryCipher(SECRET);

    const a = cipher.seal(KEY, ENTRY);
    const b = cipher.seal(KEY, ENTRY);

    expect(a).not.toBe(b);
    expect(parts(a).raw.subarray(0, 12)).not.toEqual(parts(b).raw.subarray(0, 12));
  });

  test("rejects a tampered IV, ciphertext or tag", () => {
    const cipher = createEntryCipher(SECRET);
    const sealed = cipher.seal(KEY, ENTRY);
    const { length } = parts(sealed).raw;

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
    expect(cipher.open(KEY, sealed.slice(0, 30))).toEqual({ ok: false, reason: "malformed" });
    expect(cipher.open(KEY, "v1.")).toEqual({ ok: false, reason: "malformed" });
  });

  test("rejects an entry sealed with another secret, named by key id or not", () => {
    const sealed = createEntryCipher(SECRET).seal(KEY, ENTRY);
    const { raw } = parts(sealed);
    const other = createEntryCipher("another secret");
    // A forger who names our key id without holding the secret fails the tag.
    const renamed = `v1.${other.keyIds[0]}.${raw.toString("base64url")}`;

    expect(other.open(KEY, sealed)).toEqual({ ok: false, reason: "unknown-key" });
    expect(other.open(KEY, renamed)).toEqual({ ok: false, reason: "unauthentic" });
    expect(other.open(KEY, `v1.${raw.toString("base64url")}`)).toEqual({
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

  test("reads the first format (no key id) with any key it holds", () => {
    const cipher = createEntryCipher("old secret", { now: () => 0 });
    const legacy = `v1.${parts(cipher.seal(KEY, ENTRY)).raw.toString("base64url")}`;
    cipher.rotate(SECRET);

    expect(cipher.open(KEY, legacy)).toEqual({ ok: true, entry: ENTRY });
  });

  test("after a rotation: new entries under the new key, older ones readable while they can be valid, then the old key is gone", () => {
    let now = 1_000;
    const cipher = createEntryCipher("old secret", { now: () => now });
    const old = cipher.seal(KEY, { token: "old", expiresOnTimestamp: 5_000 });
    const oldId = cipher.keyIds[0];

    cipher.rotate("new secret");
    cipher.rotate("new secret");
    const fresh = cipher.seal(KEY, { token: "new", expiresOnTimestamp: 9_000 });
    const newOnly = createEntryCipher("new secret", { now: () => now });
    const readBefore = cipher.open(KEY, old);
    now = 5_000;
    const readAfter = cipher.open(KEY, old);

    expect(fresh.startsWith(`v1.${newOnly.keyIds[0]}.`)).toBe(true);
    expect(readBefore).toEqual({ ok: true, entry: { token: "old", expiresOnTimestamp: 5_000 } });
    expect(readAfter).toEqual({ ok: false, reason: "unknown-key" });
    expect(cipher.keyIds).toEqual(newOnly.keyIds);
    expect(cipher.keyIds).not.toContain(oldId);
    expect(newOnly.open(KEY, fresh).ok).toBe(true);
    expect(newOnly.open(KEY, old)).toEqual({ ok: false, reason: "unknown-key" });
  });

  test("a replaced key is kept while entries sealed under it by others keep arriving", () => {
    let now = 0;
    const fleetPeer = createEntryCipher("old secret", { now: () => now });
    const cipher = createEntryCipher("old secret", { now: () => now });
    cipher.seal(KEY, { token: "a", expiresOnTimestamp: 1_000 });
    cipher.rotate("new secret");
    now = 900;
    const late = fleetPeer.seal(KEY, { token: "b", expiresOnTimestamp: 2_000 });
    const opened = cipher.open(KEY, late);
    now = 1_500;

    expect(opened.ok).toBe(true);
    expect(cipher.keyIds).toHaveLength(2);
    now = 2_000;
    expect(cipher.open(KEY, late)).toEqual({ ok: false, reason: "unknown-key" });
    expect(cipher.keyIds).toHaveLength(1);
  });

  test("does not expose the secret or the derived key", () => {
    const cipher = createEntryCipher(SECRET);

    cipher.seal(KEY, { ...ENTRY, expiresOnTimestamp: Date.now() + 60_000 });
    cipher.rotate("the next secret");

    for (const shown of [inspect(cipher, { showHidden: true, depth: 5 }), JSON.stringify(cipher)]) {
      expect(shown).not.toContain(SECRET);
      expect(shown).not.toContain("the next secret");
    }
    expect(() => createEntryCipher("")).toThrow(/non-empty/);
  });
});
