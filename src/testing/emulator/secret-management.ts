import type { Application } from "./applications.js";
import type { ClientSecrets } from "./client-secrets.js";
import type { EntraEmulator } from "./types.js";

/**
 * The emulator's run-time secret management (`addClientSecret`, `revokeClientSecret`,
 * `expireClientSecret`), for rotation tests: add the new secret, mount it, revoke the old.
 */

/** The part of {@link EntraEmulator} this file implements. */
export type SecretManagement = Pick<
  EntraEmulator,
  "addClientSecret" | "revokeClientSecret" | "expireClientSecret"
>;

/**
 * Secret management over the emulator's applications (found by client id); `now` is the
 * emulator's clock.
 *
 * @example
 * ```ts
 * const emulator = { ...secretManagement(directory.application, now) };
 * emulator.addClientSecret("my-app", "new-secret");
 * ```
 */
export function secretManagement(
  application: (clientId: string) => Application | undefined,
  now: () => number,
): SecretManagement {
  const secretsOf = (clientId: string): ClientSecrets => {
    const app = application(clientId);
    if (app === undefined) {
      throw new RangeError(`No application '${clientId}' is registered with the emulator`);
    }
    return app.secrets;
  };
  return {
    addClientSecret: (clientId, secret, options) => secretsOf(clientId).add(secret, options),
    revokeClientSecret: (clientId, secret) => secretsOf(clientId).revoke(secret),
    expireClientSecret: (clientId, secret, at) =>
      secretsOf(clientId).expire(secret, at ?? new Date(now())),
  };
}
