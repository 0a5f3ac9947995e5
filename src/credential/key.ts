import type { TokenKey } from "../streams/types.js";

/**
 * A registry key of the credential: the resolved tenant, the scopes, the claims and whether
 * the token is CAE-enabled. CAE and non-CAE tokens never share a key.
 */
export interface CredentialKey extends TokenKey {
  readonly id: string;
  /** `true` when claims are present: such keys always go to the network. */
  readonly shortLived: boolean;
  /** Lower-cased tenant. */
  readonly tenant: string;
  /** Trimmed, de-duplicated, sorted scopes. */
  readonly scopes: readonly string[];
  /** The claims JSON as given, or `undefined`. */
  readonly claims: string | undefined;
  /** Whether the token is requested with client capability `cp1`. */
  readonly enableCae: boolean;
}

/**
 * Derives the key of one request. `id` is the JSON array
 * `[tenant, [scopes...], claims | null, enableCae]`: JSON quoting makes it unambiguous (no
 * choice of separator can collide, e.g. a scope holding `|` or `,`).
 *
 * @param tenant - the resolved tenant (validated); lower-cased here
 * @param scopes - validated scopes; trimmed, de-duplicated and sorted here
 * @param claims - validated claims JSON, or `undefined`
 * @param enableCae - whether the request is CAE-enabled
 * @example
 * ```ts
 * deriveKey("Contoso.onmicrosoft.com", ["b", " a", "a"], undefined, false).id;
 * // '["contoso.onmicrosoft.com",["a","b"],null,false]'
 * ```
 */
export function deriveKey(
  tenant: string,
  scopes: readonly string[],
  claims: string | undefined,
  enableCae: boolean,
): CredentialKey {
  const normalizedTenant = tenant.toLowerCase();
  const normalizedScopes = [...new Set(scopes.map((scope) => scope.trim()))].sort();
  return {
    // The same text as `JSON.stringify([tenant, scopes, claims ?? null, enableCae])`, built
    // with `join`, which yields one flat string: V8's `JSON.stringify` of an array yields a
    // tree of concatenated strings, and every registry entry would keep the tree (about
    // 100 bytes per key) besides the flat copy its Map lookup makes.
    id: [
      "[",
      JSON.stringify(normalizedTenant),
      ",",
      JSON.stringify(normalizedScopes),
      ",",
      claims === undefined ? "null" : JSON.stringify(claims),
      ",",
      enableCae ? "true" : "false",
      "]",
    ].join(""),
    shortLived: claims !== undefined,
    tenant: normalizedTenant,
    scopes: normalizedScopes,
    claims,
    enableCae,
  };
}
