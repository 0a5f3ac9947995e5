import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { STORE_VERSION } from "./store-key.js";
import type { TokenStoreEntry } from "./token-store.js";

/**
 * Tokens at rest are sealed with AES-256-GCM under a key derived from the client secret:
 * whoever can read the file or the Redis value but does not hold the secret learns nothing
 * and cannot forge an entry. The store key is the additional authenticated data, so an
 * entry copied to another key (another tenant, scope or client) fails to open.
 *
 * Rotation: each sealed value names the key it was sealed under (a key id, itself derived
 * from the secret, so it shows nothing of it). After `rotate(newSecret)` new entries are
 * sealed under the new key, and the previous keys stay for as long as entries sealed under
 * them can still be valid: until the latest expiry of any entry this cipher sealed or opened
 * with them. Only derived keys are kept, never a secret. A value sealed under a key this
 * cipher does not hold is refused (`unknown-key`), never guessed at.
 */

// Fixed, public HKDF parameters: they only separate this use of the secret from any other
// (RFC 5869 §3.1/3.2); changing them (or STORE_VERSION) invalidates every stored entry.
const HKDF_SALT = `rx-identity/token-store/v${STORE_VERSION}/salt`;
const HKDF_INFO = `rx-identity/token-store/v${STORE_VERSION}/aes-256-gcm`;
const HKDF_KEY_ID_INFO = `rx-identity/token-store/v${STORE_VERSION}/key-id`;
const KEY_ID_BYTES = 8;
const PREFIX = `v${STORE_VERSION}.`;
const IV_BYTES = 12; // 96 bits, the size GCM is designed for (NIST SP 800-38D §5.2.1.1)
const TAG_BYTES = 16;

/** Why a sealed entry was refused. Never contains the entry, the token or the secret. */
export type OpenFailure =
  | "malformed" // not this format, bad encoding, or too short (truncated)
  | "unauthentic" // tag mismatch: tampered, or moved to another key
  | "unknown-key" // sealed under a secret this cipher does not hold (another or a rotated one)
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
  /**
   * `v1.<key id>.<base64url(iv ‖ ciphertext ‖ tag)>` under the newest secret's key, a fresh
   * random IV each call.
   */
  seal(key: string, entry: TokenStoreEntry): string;
  /**
   * The entry, or why it cannot be trusted. Never throws. Values of the first format,
   * `v1.<base64url>` with no key id, are tried with every key held.
   */
  open(key: string, sealed: string): OpenResult;
  /**
   * Seals under `clientSecret` from now on; entries sealed under the earlier secrets stay
   * readable while they can be valid. The same secret again changes nothing.
   */
  rotate(clientSecret: string): void;
  /** The ids of the keys held, newest first. */
  readonly keyIds: readonly string[];
}

/** Options of {@link createEntryCipher}. */
export interface EntryCipherOptions {
  /** The clock that tells when a replaced key may be forgotten. @default Date.now */
  readonly now?: (() => number) | undefined;
}

interface HeldKey {
  readonly id: string;
  readonly key: Buffer;
  /** The latest expiry of an entry sealed or opened with this key. */
  lastExpiry: number;
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
 * A cipher for entries of the credential with `clientSecret`. Each secret is used once, to
 * derive its key and key id (HKDF-SHA-256), and is not kept; the derived keys live in a
 * closure, out of reach of `util.inspect` and `JSON.stringify`.
 *
 * @example
 * ```ts
 * const cipher = createEntryCipher(process.env.AZURE_CLIENT_SECRET!);
 * cipher.rotate(newSecret); // new entries under the new secret; older ones stay readable
 * ```
 */
export function createEntryCipher(
  clientSecret: string,
  options: EntryCipherOptions = {},
): EntryCipher {
  const now = options.now ?? Date.now;
  const derive = (secret: string): HeldKey => {
    if (typeof secret !== "string" || secret.length === 0) {
      throw new TypeError(
        "Expected `clientSecret` to be a non-empty string to derive the store key.",
      );
    }
    return {
      id: Buffer.from(
        hkdfSync("sha256", secret, HKDF_SALT, HKDF_KEY_ID_INFO, KEY_ID_BYTES),
      ).toString("base64url"),
      key: Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, HKDF_INFO, 32)),
      lastExpiry: Number.NEGATIVE_INFINITY,
    };
  };
  /** Newest first; every key but the first is kept only while its entries can be valid. */
  let keys: HeldKey[] = [derive(clientSecret)];

  const prune = (): void => {
    if (keys.length === 1) return;
    const at = now();
    keys = keys.filter((held, index) => index === 0 || held.lastExpiry > at);
  };

  function seal(storeKey: string, entry: TokenStoreEntry): string {
    prune();
    const held = keys[0] as HeldKey;
    held.lastExpiry = Math.max(held.lastExpiry, entry.expiresOnTimestamp);
    const plain: TokenStoreEntry = {
      token: entry.token,
      expiresOnTimestamp: entry.expiresOnTimestamp,
      ...(entry.refreshAfterTimestamp === undefined
        ? {}
        : { refreshAfterTimestamp: entry.refreshAfterTimestamp }),
    };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", held.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(storeKey));
    const body = Buffer.concat([cipher.update(JSON.stringify(plain), "utf8"), cipher.final()]);
    return `${PREFIX}${held.id}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  function openWith(held: HeldKey, storeKey: string, raw: Buffer): OpenResult {
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
    let plain: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", held.key, iv, {
        authTagLength: TAG_BYTES,
      });
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
    if (!isEntry(value)) return { ok: false, reason: "invalid" };
    held.lastExpiry = Math.max(held.lastExpiry, value.expiresOnTimestamp);
    return { ok: true, entry: value };
  }

  function open(storeKey: string, sealed: string): OpenResult {
    if (typeof sealed !== "string" || !sealed.startsWith(PREFIX)) {
      return { ok: false, reason: "malformed" };
    }
    const rest = sealed.slice(PREFIX.length);
    const dot = rest.indexOf(".");
    const keyId = dot === -1 ? undefined : rest.slice(0, dot);
    const encoded = dot === -1 ? rest : rest.slice(dot + 1);
    if (
      !/^[A-Za-z0-9_-]*$/.test(encoded) ||
      (keyId !== undefined && !/^[A-Za-z0-9_-]+$/.test(keyId))
    ) {
      return { ok: false, reason: "malformed" };
    }
    const raw = Buffer.from(encoded, "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return { ok: false, reason: "malformed" };
    prune();
    if (keyId !== undefined) {
      const held = keys.find((candidate) => candidate.id === keyId);
      return held === undefined
        ? { ok: false, reason: "unknown-key" }
        : openWith(held, storeKey, raw);
    }
    // The first format named no key: any key held may have sealed it.
    let result: OpenResult = { ok: false, reason: "unauthentic" };
    for (const held of keys) {
      result = openWith(held, storeKey, raw);
      if (result.ok || result.reason === "invalid") return result;
    }
    return result;
  }

  function rotate(secret: string): void {
    const next = derive(secret);
    if (next.id === keys[0]?.id) return;
    keys = [next, ...keys.filter((held) => held.id !== next.id)];
    prune();
  }

  return {
    seal,
    open,
    rotate,
    get keyIds() {
      return keys.map((held) => held.id);
    },
  };
}

/**
 * Why an entry was not used, for a log line. An entry sealed under an unknown key is what a
 * rotation leaves behind (written before a restart under a new secret, or by a process still
 * on the old one); the others mean tampering or damage.
 *
 * @example
 * ```ts
 * describeOpenFailure("unknown-key"); // "sealed under a client secret this process does not hold: ..."
 * ```
 */
export function describeOpenFailure(reason: OpenFailure): string {
  return reason === "unknown-key"
    ? "sealed under a client secret this process does not hold: written before a secret rotation, or by a process on another secret; a new token replaces it"
    : `${reason}: tampered or truncated`;
}
