/**
 * The emulator's App Service-style managed identity endpoint, without HTTP: what a
 * `GET /msi/token?resource=...&api-version=2019-08-01` with `X-IDENTITY-HEADER` is answered
 * (the protocol App Service and Azure Functions serve at `IDENTITY_ENDPOINT`, which
 * `@azure/identity`'s `ManagedIdentityCredential` speaks through msal-node's `AppService`
 * source). Errors have App Service's shape, `{ statusCode, message }`.
 */
import { timingSafeEqual } from "node:crypto";
import type { ManagedIdentityOptions } from "./types.js";

/** The path the endpoint is served at. */
export const MANAGED_IDENTITY_PATH = "/msi/token";

/** The only API version App Service's endpoint answers (msal-node sends it). */
export const MANAGED_IDENTITY_API_VERSION = "2019-08-01";

/** The managed identity with its defaults filled in. */
export interface ManagedIdentity {
  readonly tenant: string;
  readonly clientId: string;
  readonly tokenLifetimeSeconds: number;
  /** The `X-IDENTITY-HEADER` value requests must carry. */
  readonly header: string;
}

/** A request to the endpoint, as read: an error to answer, or the resource asked for. */
export type ManagedIdentityRequest =
  | { readonly ok: true; readonly resource: string }
  | { readonly ok: false; readonly status: number; readonly message: string };

/** Fills in the defaults of {@link ManagedIdentityOptions}. */
export function managedIdentityOf(
  options: ManagedIdentityOptions | undefined,
  header: string,
  defaultLifetimeSeconds: number,
): ManagedIdentity {
  return {
    tenant: options?.tenant ?? "00000000-0000-4000-8000-0000000000a1",
    clientId: options?.clientId ?? "00000000-0000-4000-8000-0000000000b2",
    tokenLifetimeSeconds: options?.tokenLifetimeSeconds ?? defaultLifetimeSeconds,
    header,
  };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Reads one request to the endpoint as App Service does: the header must match, the API
 * version must be 2019-08-01, and a `resource` must be named.
 *
 * @example
 * ```ts
 * readManagedIdentityRequest("GET", new URL("https://127.0.0.1/msi/token?resource=https://vault.azure.net&api-version=2019-08-01"), header, identity);
 * ```
 */
export function readManagedIdentityRequest(
  method: string,
  url: URL,
  header: string | string[] | undefined,
  identity: ManagedIdentity,
): ManagedIdentityRequest {
  if (method !== "GET") return { ok: false, status: 405, message: "Use GET." };
  if (typeof header !== "string" || !sameSecret(header, identity.header)) {
    return {
      ok: false,
      status: 401,
      message: "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
    };
  }
  const version = url.searchParams.get("api-version");
  if (version !== MANAGED_IDENTITY_API_VERSION) {
    return {
      ok: false,
      status: 400,
      message: `Unsupported api-version '${String(version).slice(0, 40)}': use ${MANAGED_IDENTITY_API_VERSION}.`,
    };
  }
  const resource = url.searchParams.get("resource");
  if (resource === null || resource.trim() === "") {
    return { ok: false, status: 400, message: "The 'resource' query parameter is required." };
  }
  return { ok: true, resource };
}
