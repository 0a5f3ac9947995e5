/**
 * The emulator's directory: the tenants it knows and the applications registered in them.
 * State only; the token endpoint asks it who may have a token.
 */
import { toApplication } from "./applications.js";
import type { Application } from "./applications.js";
import type { ApplicationRegistration } from "./types.js";

/** The tenants and applications of one emulator. */
export interface Directory {
  readonly register: (registration: ApplicationRegistration) => ApplicationRegistration;
  readonly remove: (clientId: string) => void;
  readonly application: (clientId: string) => Application | undefined;
  /** Whether `tenant` exists: every tenant with `"*"`, else a listed one or an application's. */
  readonly tenantExists: (tenant: string) => boolean;
}

/** `tenants` as `EntraEmulatorOptions.tenants` has it (`"*"` or undefined: any tenant). */
export function createDirectory(tenants: readonly string[] | "*" | undefined): Directory {
  const applications = new Map<string, Application>();
  const knownTenants: Set<string> | "*" =
    tenants === undefined || tenants === "*"
      ? "*"
      : new Set(tenants.map((tenant) => tenant.toLowerCase()));
  return {
    register(registration) {
      applications.set(registration.clientId, toApplication(registration));
      return registration;
    },
    remove(clientId) {
      applications.delete(clientId);
    },
    application: (clientId) => applications.get(clientId),
    tenantExists(tenant) {
      if (knownTenants === "*") return true;
      const lower = tenant.toLowerCase();
      if (knownTenants.has(lower)) return true;
      for (const app of applications.values()) {
        if (app.tenants !== "*" && app.tenants.has(lower)) return true;
      }
      return false;
    },
  };
}
