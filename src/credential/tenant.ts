import { CredentialUnavailableError } from "../errors/index.js";
import { validateTenantId } from "./validation.js";

/**
 * Tenant resolution, as Azure Identity's `processMultiTenantRequest` does it
 * (`@azure/identity` `util/processMultiTenantRequest.js`): a per-request tenant is allowed
 * when it is the default, listed in `additionallyAllowedTenants`, or `"*"` is listed; with
 * `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` set, every request uses the default tenant.
 *
 * One deliberate difference: tenants compare case-insensitively (tenant GUIDs and domains
 * are case-insensitive), where Azure Identity uses `localeCompare`.
 */

/**
 * The message Azure Identity uses for a tenant that is not allowed, kept word for word so
 * people who search for it find the same advice.
 */
function notAllowedMessage(tenantId: string): string {
  return `The current credential is not configured to acquire tokens for tenant ${tenantId}. To enable acquiring tokens for this tenant add it to the AdditionallyAllowedTenants on the credential options (additionallyAllowedTenants), or add "*" to AdditionallyAllowedTenants to allow acquiring tokens for any tenant.`;
}

/**
 * Whether multi-tenant requests are disabled by the environment. Like Azure Identity, any
 * non-empty value of `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` disables them.
 *
 * @example
 * ```ts
 * isMultiTenantDisabled({ AZURE_IDENTITY_DISABLE_MULTITENANTAUTH: "true" }); // true
 * ```
 */
export function isMultiTenantDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env["AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"];
  return value !== undefined && value !== "";
}

/**
 * Picks the tenant of one request.
 *
 * @param defaultTenant - the credential's tenant (already validated)
 * @param requested - `GetTokenOptions.tenantId`, if any
 * @param allowed - the validated `additionallyAllowedTenants` (may hold `"*"`)
 * @param env - where to read `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH`
 * @default env process.env
 * @returns the tenant to request a token from
 * @throws {@link InvalidArgumentError} for a malformed tenant id,
 *   {@link CredentialUnavailableError} naming `additionallyAllowedTenants` for a tenant that is
 *   not allowed
 * @example
 * ```ts
 * resolveTenant("tenant-a", "tenant-b", ["tenant-b"]); // "tenant-b"
 * resolveTenant("tenant-a", "tenant-c", ["tenant-b"]); // throws CredentialUnavailableError
 * ```
 */
export function resolveTenant(
  defaultTenant: string,
  requested: string | undefined,
  allowed: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (requested === undefined) return defaultTenant;
  validateTenantId(requested, "tenantId");
  if (isMultiTenantDisabled(env)) return defaultTenant;
  const wanted = requested.toLowerCase();
  if (wanted === defaultTenant.toLowerCase()) return defaultTenant;
  if (allowed.includes("*") || allowed.some((tenant) => tenant.toLowerCase() === wanted)) {
    return requested;
  }
  throw new CredentialUnavailableError(notAllowedMessage(requested));
}
