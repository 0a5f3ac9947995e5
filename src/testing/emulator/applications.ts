import { createHash } from "node:crypto";
import { ClientSecrets } from "./client-secrets.js";
import type { ApplicationRegistration } from "./types.js";

/** A registered application with its defaults filled in. */
export interface Application {
  readonly clientId: string;
  readonly objectId: string;
  readonly tenants: "*" | ReadonlySet<string>;
  readonly tokenLifetimeSeconds: number | undefined;
  readonly refreshInSeconds: number | undefined;
  /** Its client secrets (the registration's first, then any added at run time). */
  readonly secrets: ClientSecrets;
}

const tenantPattern = /^[0-9A-Za-z.-]+$/;

/**
 * Validates a registration and turns it into an {@link Application}. Secrets are kept
 * only as SHA-256 digests, so they cannot leak through `util.inspect` of the emulator.
 *
 * @example
 * ```ts
 * const app = toApplication({ clientId: "c", clientSecret: "s" });
 * app.secrets.verdict("s", Date.now()); // "valid"
 * ```
 */
export function toApplication(registration: ApplicationRegistration): Application {
  const { clientId, clientSecret } = registration;
  if (typeof clientId !== "string" || clientId.length === 0) {
    throw new TypeError("Expected `clientId` to be a non-empty string");
  }
  if (typeof clientSecret !== "string" || clientSecret.length === 0) {
    throw new TypeError(
      `Expected \`clientSecret\` of application '${clientId}' to be a non-empty string`,
    );
  }
  const tenants = registration.tenants ?? "*";
  if (tenants !== "*") {
    for (const tenant of tenants) {
      if (!tenantPattern.test(tenant)) {
        throw new TypeError(
          `Expected tenant ids of application '${clientId}' to match ${String(tenantPattern)}, got '${tenant}'`,
        );
      }
    }
  }
  for (const name of ["tokenLifetimeSeconds", "refreshInSeconds"] as const) {
    const value = registration[name];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(
        `Expected \`${name}\` of application '${clientId}' to be a positive number, got ${String(value)}`,
      );
    }
  }
  return {
    clientId,
    objectId: registration.objectId ?? guidFrom(`oid:${clientId}`),
    tenants: tenants === "*" ? "*" : new Set(tenants.map((tenant) => tenant.toLowerCase())),
    tokenLifetimeSeconds: registration.tokenLifetimeSeconds,
    refreshInSeconds: registration.refreshInSeconds,
    secrets: new ClientSecrets(clientId, clientSecret, registration.secretExpiresOn),
  };
}

/** Whether `tenantId` is shaped like a tenant id (a GUID or a domain name). */
export function isWellFormedTenant(tenantId: string): boolean {
  return tenantPattern.test(tenantId);
}

/** A stable GUID-shaped id derived from `seed`. */
export function guidFrom(seed: string): string {
  const hex = createHash("sha256").update(seed).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
