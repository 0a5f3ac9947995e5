import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { STORE_VERSION } from "./store-key.js";
import type { TokenStoreEntry } from "./token-store.js";

/**
 * Tokens at rest are sealed with AES-256-GCM under a key derived from the client secret:
 * whoever can read the file or the Redis value but does not hold the secret learns nothing
 * and cannot forge an entry. The store key is the additional authenticated data, so an
 * entry copied to another key (another tenant, scope or client) fails to open.
 */

// Fixed, public HKDF parameters: they only separate this use of the secret from any other
// (RFC 5869 §3.1/3.2); changing them (or STORE_VERSION) invalidates every stored entry.
const HKDF_SALT = `rx-identity/token-store/v${STORE_VERSION}/salt`;
const HKDF_INFO = `rx-identity/token-store/v${STORE_VERSION}/aes-256-gcm`;
const PREFIX = `v${STORE_VERSION}.`;
const IV_BYTES = 12; // 96 bits, the size GCM is designed for (NIST SP 800-38D §5.2.1.1)
const TAG_BYTES = 16;

/** Why a sealed entry was refused. Never contains the entry, the token or the secret. */
export type OpenFailure =
  | "malformed" // not this format, bad encoding, or too short (truncated)
  | "unauthentic" // tag mismatch: tampered, another secret, or moved to another key
  | "invalid"; // decrypted but not an entry (a bug or a future format)

/** The outcome of {@link EntryCipher.open}. */
export type OpenResult =
  | { readonly ok: true; readonly entry: TokenStoreEntry }
  | { readonly ok: false; readonly reason: OpenFailure };

/**
 * Seals and opens store entries for one client secret.
 *
 * @example
 * ```ts
 * const cipher = createEntryCipher(clientSecret);
 * const sealed = cipher.seal(key, { token, expiresOnTimestamp });
 * const opened = cipher.open(key, sealed); // { ok: true, entry }
 * ```
 */
export interface EntryCipher {
  /** `v1.<base64url(iv ‖ ciphertext ‖ tag)>`, a fresh random IV each call. */
  seal(key: string, entry: TokenStoreEntry): string;
  /** The entry, or why it cannot be trusted. Never throws. */
  open(key: string, sealed: string): OpenResult;
}

function aadOf(key: string): Buffer {
  return Buffer.from(`rx-identity/token-store/v${STORE_VERSION}/key:${key}`, "utf8");
}

function isEntry(value: unknown): value is TokenStoreEntry {
  if (typeof value !== "object" || value === null) return false;
  const { token, expiresOnTimestamp, refreshAfterTimestamp } = value as Record<string, unknown>;
  return (
    typeof token === "string" &&
    token.length > 0 &&
    typeof expiresOnTimestamp === "number" &&
    Number.isFinite(expiresOnTimestamp) &&
    (refreshAfterTimestamp === undefined ||
      (typeof refreshAfterTimestamp === "number" && Number.isFinite(refreshAfterTimestamp)))
  );
}

/**
 * A cipher for entries of the credential with `clientSecret`. The secret is used once, to
 * derive the key (HKDF-SHA-256), and is not kept; the derived key lives in a closure, out of
 * reach of `util.inspect` and `JSON.stringify`.
 *
 * @example
 * ```ts
 * const cipher = createEntryCipher(process.env.AZURE_CLIENT_SECRET!);
 * ```
 */
export function createEntryCipher(clientSecret: string): EntryCipher {
  if (clientSecret.length === 0) {
    throw new TypeError(
      "Expected `clientSecret` to be a non-empty string to derive the store key.",
    );
  }
  const key = Buffer.from(hkdfSync("sha256", clientSecret, HKDF_SALT, HKDF_INFO, 32));

  function seal(storeKey: string, entry: TokenStoreEntry): string {
    const plain: TokenStoreEntry = {
      token: entry.token,
      expiresOnTimestamp: entry.expiresOnTimestamp,
      ...(entry.refreshAfterTimestamp === undefined
        ? {}
        : { refreshAfterTimestamp: entry.refreshAfterTimestamp }),
    };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(storeKey));
    const body = Buffer.concat([cipher.update(JSON.stringify(plain), "utf8"), cipher.final()]);
    return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  function open(storeKey: string, sealed: string): OpenResult {
    if (typeof sealed !== "string" || !sealed.startsWith(PREFIX)) {
      return { ok: false, reason: "malformed" };
    }
    const encoded = sealed.slice(PREFIX.length);
    if (!/^[A-Za-z0-9_-]*$/.test(encoded)) return { ok: false, reason: "malformed" };
    const raw = Buffer.from(encoded, "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return { ok: false, reason: "malformed" };
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
    let plain: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aadOf(storeKey));
      decipher.setAuthTag(tag);
      plain = Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
    } catch {
      return { ok: false, reason: "unauthentic" };
    }
    let value: unknown;
    try {
      value = JSON.parse(plain);
    } catch {
      return { ok: false, reason: "invalid" };
    }
    return isEntry(value) ? { ok: true, entry: value } : { ok: false, reason: "invalid" };
  }

  return { seal, open };
}
