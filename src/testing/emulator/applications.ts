import { createHash, timingSafeEqual } from "node:crypto";
import type { ApplicationRegistration } from "./types.js";

/** A registered application with its defaults filled in. */
export interface Application {
  readonly clientId: string;
  readonly objectId: string;
  readonly tenants: "*" | ReadonlySet<string>;
  readonly secretExpiresOn: Date | undefined;
  readonly tokenLifetimeSeconds: number | undefined;
  readonly refreshInSeconds: number | undefined;
  /** Compares in constant time, so the emulator is no timing oracle for a secret. */
  secretMatches(candidate: string): boolean;
}

const tenantPattern = /^[0-9A-Za-z.-]+$/;

/**
 * Validates a registration and turns it into an {@link Application}. The secret is kept
 * only as a SHA-256 digest, so it cannot leak through `util.inspect` of the emulator.
 *
 * @example
 * ```ts
 * const app = toApplication({ clientId: "c", clientSecret: "s" });
 * app.secretMatches("s"); // true
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
  const digest = sha256(clientSecret);
  return {
    clientId,
    objectId: registration.objectId ?? guidFrom(`oid:${clientId}`),
    tenants: tenants === "*" ? "*" : new Set(tenants.map((tenant) => tenant.toLowerCase())),
    secretExpiresOn: registration.secretExpiresOn,
    tokenLifetimeSeconds: registration.tokenLifetimeSeconds,
    refreshInSeconds: registration.refreshInSeconds,
    secretMatches: (candidate) => timingSafeEqual(sha256(candidate), digest),
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

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
