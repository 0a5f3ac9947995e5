import { CredentialUnavailableError, InvalidArgumentError } from "../errors/index.js";

/**
 * Validation of everything a caller hands the credential, before any network call.
 *
 * Messages name the argument and say what to do; they never echo a client secret, and they
 * echo other values only after making them printable (JSON-quoted, truncated), so a hostile
 * value cannot forge log lines.
 */

const TROUBLESHOOT =
  "See https://learn.microsoft.com/partner-center/find-ids-and-domain-names to find your tenant id.";

/**
 * The largest claims JSON accepted, in UTF-8 bytes. Real CAE and conditional-access claims
 * are a few hundred bytes; the bound stops a hostile challenge from growing requests and
 * keys without limit.
 */
export const MAX_CLAIMS_BYTES = 16 * 1024;

/** The longest tenant id accepted (domain names are at most 253 characters). */
const MAX_TENANT_LENGTH = 256;

/** The longest single scope accepted. */
const MAX_SCOPE_LENGTH = 2048;

/** Azure Identity's `checkTenantId` pattern (`util/tenantIdUtils.js`), ASCII only. */
const TENANT_PATTERN = /^[0-9A-Za-z.-]+$/;

// Any whitespace (including Unicode spaces) or C0/C1 control character.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_SCOPE = /[\s\u0000-\u001f\u007f-\u009f]/u;

/** A printable, bounded rendering of a value for error messages (never used for secrets). */
export function describeValue(value: unknown): string {
  if (typeof value !== "string") return value === null ? "null" : typeof value;
  const shown = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return JSON.stringify(shown);
}

/**
 * Throws unless `tenantId` is a tenant id or domain: ASCII letters, digits, `.` and `-`,
 * not `.`-led and without `..` (so it can never climb out of the authority path).
 *
 * @param tenantId - the value to check
 * @param argumentName - how the caller named it, for the message
 * @throws {@link InvalidArgumentError}
 * @example
 * ```ts
 * validateTenantId("72f988bf-86f1-41af-91ab-2d7cd011db47", "tenantId");
 * validateTenantId("../evil", "tenantId"); // throws InvalidArgumentError
 * ```
 */
export function validateTenantId(
  tenantId: unknown,
  argumentName: string,
): asserts tenantId is string {
  if (typeof tenantId !== "string" || tenantId.length === 0) {
    throw new InvalidArgumentError(
      `${argumentName} must be a non-empty string, got ${describeValue(tenantId)}. ${TROUBLESHOOT}`,
    );
  }
  if (
    tenantId.length > MAX_TENANT_LENGTH ||
    !TENANT_PATTERN.test(tenantId) ||
    tenantId.startsWith(".") ||
    tenantId.includes("..")
  ) {
    throw new InvalidArgumentError(
      `${argumentName} ${describeValue(tenantId)} is not a valid tenant id: use a directory (tenant) GUID or a domain such as contoso.onmicrosoft.com (letters, digits, "." and "-" only). ${TROUBLESHOOT}`,
    );
  }
}

/**
 * Throws unless `clientId` is a non-empty string without whitespace or control characters.
 *
 * @throws {@link CredentialUnavailableError} (as Azure Identity does for a missing client id)
 * @example
 * ```ts
 * validateClientId("00000000-0000-0000-0000-000000000001");
 * ```
 */
export function validateClientId(clientId: unknown): asserts clientId is string {
  if (typeof clientId !== "string" || clientId.trim().length === 0) {
    throw new CredentialUnavailableError(
      `ClientSecretCredential: clientId is a required parameter: pass the application (client) id of the app registration, got ${describeValue(clientId)}.`,
    );
  }
  if (FORBIDDEN_IN_SCOPE.test(clientId)) {
    throw new InvalidArgumentError(
      `clientId ${describeValue(clientId)} contains whitespace or control characters: pass the application (client) id exactly as the app registration shows it.`,
    );
  }
}

/**
 * Throws unless `clientSecret` is a non-empty string. The message never contains the value.
 *
 * @throws {@link CredentialUnavailableError}
 * @example
 * ```ts
 * validateClientSecret(process.env.AZURE_CLIENT_SECRET);
 * ```
 */
export function validateClientSecret(clientSecret: unknown): asserts clientSecret is string {
  if (typeof clientSecret !== "string" || clientSecret.length === 0) {
    throw new CredentialUnavailableError(
      `ClientSecretCredential: clientSecret is a required parameter: pass a client secret of the app registration (got ${clientSecret === "" ? "an empty string" : typeof clientSecret}).`,
    );
  }
}

/**
 * Parses and normalises an authority host: an absolute `https:` URL with no credentials, query
 * or fragment. Returns it without a trailing `/`.
 *
 * @throws {@link InvalidArgumentError}
 * @example
 * ```ts
 * normalizeAuthorityHost("https://login.microsoftonline.com/"); // "https://login.microsoftonline.com"
 * ```
 */
export function normalizeAuthorityHost(authorityHost: unknown): string {
  const bad = (why: string, shown = true): InvalidArgumentError =>
    new InvalidArgumentError(
      `authorityHost${shown ? ` ${describeValue(authorityHost)}` : ""} ${why}: pass an absolute https URL such as "https://login.microsoftonline.com".`,
    );
  if (typeof authorityHost !== "string" || authorityHost.length === 0) {
    throw bad("must be a non-empty string");
  }
  let url: URL;
  try {
    url = new URL(authorityHost);
  } catch {
    throw bad("is not an absolute URL", !authorityHost.includes("@"));
  }
  // Never echo a URL that carries credentials: they are secrets.
  if (url.username !== "" || url.password !== "") throw bad("must not contain credentials", false);
  if (url.protocol !== "https:") throw bad("must use https (Entra ID and MSAL refuse http)");
  if (url.search !== "" || authorityHost.includes("?")) throw bad("must not contain a query");
  if (url.hash !== "" || authorityHost.includes("#")) throw bad("must not contain a fragment");
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/**
 * Validates scopes and returns them trimmed. A single scope string is one scope.
 *
 * @throws {@link InvalidArgumentError}
 * @example
 * ```ts
 * validateScopes("https://storage.azure.com/.default"); // ["https://storage.azure.com/.default"]
 * validateScopes([]); // throws: at least one scope is needed
 * ```
 */
export function validateScopes(scopes: unknown): readonly string[] {
  const list: readonly unknown[] = Array.isArray(scopes) ? scopes : [scopes];
  if (list.length === 0) {
    throw new InvalidArgumentError(
      `scopes must hold at least one scope, such as "https://storage.azure.com/.default".`,
    );
  }
  return list.map((scope, index) => {
    const name = Array.isArray(scopes) ? `scopes[${index}]` : "scopes";
    if (typeof scope !== "string") {
      throw new InvalidArgumentError(
        `${name} must be a string such as "https://storage.azure.com/.default", got ${describeValue(scope)}.`,
      );
    }
    const trimmed = scope.trim();
    if (trimmed.length === 0) {
      throw new InvalidArgumentError(
        `${name} is empty: pass a scope such as "https://storage.azure.com/.default".`,
      );
    }
    if (trimmed.length > MAX_SCOPE_LENGTH || FORBIDDEN_IN_SCOPE.test(trimmed)) {
      throw new InvalidArgumentError(
        `${name} ${describeValue(scope)} contains whitespace or control characters (or is over ${MAX_SCOPE_LENGTH} characters): pass each scope as its own array element.`,
      );
    }
    return trimmed;
  });
}

/**
 * Validates claims: `undefined` or `""` means none; otherwise a JSON object of at most
 * {@link MAX_CLAIMS_BYTES} UTF-8 bytes. Returns the claims unchanged (or `undefined`).
 *
 * @throws {@link InvalidArgumentError}
 * @example
 * ```ts
 * validateClaims('{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}');
 * validateClaims("[1,2]"); // throws: claims must be a JSON object
 * ```
 */
export function validateClaims(claims: unknown): string | undefined {
  if (claims === undefined || claims === "") return undefined;
  if (typeof claims !== "string") {
    throw new InvalidArgumentError(
      `claims must be a JSON object serialised as a string, got ${describeValue(claims)}.`,
    );
  }
  if (Buffer.byteLength(claims, "utf8") > MAX_CLAIMS_BYTES) {
    throw new InvalidArgumentError(
      `claims are ${Buffer.byteLength(claims, "utf8")} bytes, over the ${MAX_CLAIMS_BYTES}-byte limit: pass the claims of one challenge as the resource sent them.`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(claims);
  } catch {
    throw new InvalidArgumentError(
      `claims ${describeValue(claims)} are not valid JSON: pass the decoded claims of a WWW-Authenticate challenge (see parseClaimsChallenge).`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(
      `claims ${describeValue(claims)} must be a JSON object, such as {"access_token":{...}}.`,
    );
  }
  return claims;
}

/**
 * Validates `additionallyAllowedTenants`: an array of tenant ids, or `"*"` for any tenant.
 *
 * @throws {@link InvalidArgumentError}
 * @example
 * ```ts
 * validateAllowedTenants(["*"]);
 * ```
 */
export function validateAllowedTenants(tenants: unknown): readonly string[] {
  if (tenants === undefined) return [];
  if (!Array.isArray(tenants)) {
    throw new InvalidArgumentError(
      `additionallyAllowedTenants must be an array of tenant ids (or ["*"] for any tenant), got ${describeValue(tenants)}.`,
    );
  }
  return tenants.map((tenant, index) => {
    if (tenant === "*") return "*";
    validateTenantId(tenant, `additionallyAllowedTenants[${index}]`);
    return tenant;
  });
}
