import { createHash } from "node:crypto";

/**
 * Store keys: what identifies one token, hashed, so nothing readable (and never the client
 * secret) ends up in a file name, a Redis key or a log line.
 */

/** The store format version, part of every key and of the sealing key derivation. */
export const STORE_VERSION = 1;

/**
 * The fields that identify one token. The secret is deliberately not one of them: rotating
 * it keeps the key, and entries sealed with the old secret simply fail to open.
 */
export interface StoreKeyFields {
  /** The authority host, e.g. `https://login.microsoftonline.com`. Compared case-insensitively, trailing `/` ignored. */
  readonly authorityHost: string;
  readonly clientId: string;
  /** The resolved tenant. Compared case-insensitively. */
  readonly tenantId: string;
  /** Trimmed, de-duplicated and sorted before hashing, so order does not matter. */
  readonly scopes: readonly string[];
  /** The claims JSON as given. @default undefined (no claims) */
  readonly claims?: string | undefined;
  /** CAE and non-CAE tokens never share a key. @default false */
  readonly enableCae?: boolean | undefined;
}

/** Which half of a persistent cache a key belongs to (Azure Identity keeps CAE tokens apart). */
export type StorePartition = "cae" | "nocae";

function sha256(parts: readonly unknown[]): string {
  // JSON of an array keeps field boundaries unambiguous ("a","bc" vs "ab","c").
  return createHash("sha256").update(JSON.stringify(parts)).digest("base64url");
}

function normalizeAuthority(authorityHost: string): string {
  return authorityHost.trim().replace(/\/+$/, "").toLowerCase();
}

/**
 * The store key of one token: `<partition>.<base64url SHA-256>`, e.g. `nocae.3q2-…`. The
 * partition prefix (`cae`/`nocae`) tells the file store which file holds it; the hash covers
 * every field, so two tokens that differ in any field never share an entry.
 *
 * @example
 * ```ts
 * const key = storeKeyOf({
 *   authorityHost: "https://login.microsoftonline.com",
 *   clientId, tenantId, scopes: ["https://storage.azure.com/.default"], enableCae: true,
 * }); // "cae.…"
 * ```
 */
export function storeKeyOf(fields: StoreKeyFields): string {
  const scopes = [...new Set(fields.scopes.map((scope) => scope.trim()))].sort();
  const cae = fields.enableCae === true;
  const hash = sha256([
    "rx-identity/token",
    STORE_VERSION,
    normalizeAuthority(fields.authorityHost),
    fields.clientId,
    fields.tenantId.toLowerCase(),
    scopes,
    fields.claims ?? null,
    cae,
  ]);
  return `${cae ? "cae" : "nocae"}.${hash}`;
}

/**
 * The partition of a store key made by {@link storeKeyOf}, or `undefined` for a key of
 * another shape.
 *
 * @example
 * ```ts
 * partitionOf(storeKeyOf({ ...fields, enableCae: true })); // "cae"
 * ```
 */
export function partitionOf(key: string): StorePartition | undefined {
  if (key.startsWith("cae.")) return "cae";
  if (key.startsWith("nocae.")) return "nocae";
  return undefined;
}

/**
 * An identifier of one application registration at one authority, for naming what a fleet
 * shares per credential (the Redis pub/sub channel). Hashed like store keys.
 *
 * @example
 * ```ts
 * const credentialId = credentialIdOf({ authorityHost, clientId });
 * const store = await createRedisTokenStore({ url, clientSecret, credentialId });
 * ```
 */
export function credentialIdOf(fields: Pick<StoreKeyFields, "authorityHost" | "clientId">): string {
  return sha256([
    "rx-identity/credential",
    STORE_VERSION,
    normalizeAuthority(fields.authorityHost),
    fields.clientId,
  ]);
}
