import { isAuthenticationError } from "../errors/index.js";
import type { AcquiredToken } from "../streams/types.js";
import type { CredentialKey } from "./key.js";
import { logger } from "./logger.js";
import type { SecretSnapshot, SecretSource } from "./secret-source.js";

/**
 * What the credential does when Entra ID refuses the client secret (`invalid_client`:
 * AADSTS7000215 wrong or revoked secret, 7000222 expired secret). A secret newer than the
 * refused one gets exactly one immediate retry; otherwise the typed permanent error stands
 * (with its AADSTS code) and the engine does what it does with any permanent failure: a
 * held token is served and the next attempt waits for the permanent-failure back-off; with
 * no token the callers get the error. Microsoft.Identity.Web reloaded the secret on every
 * `invalid_client` and looped (microsoft-identity-web #3652, #3654): here one refusal leads
 * to at most one more request, and only with a secret that was not tried yet.
 */

/** One token request with a given secret (the MSAL acquisition). */
export type AttemptWithSecret = (
  secret: SecretSnapshot,
  key: CredentialKey,
  signal: AbortSignal,
) => Promise<AcquiredToken>;

/** Options of {@link withSecretFailover}. */
export interface SecretFailoverOptions {
  readonly secrets: SecretSource;
  readonly attempt: AttemptWithSecret;
}

/**
 * Whether `error` says the client secret was refused (OAuth `invalid_client`).
 *
 * @example
 * ```ts
 * isRefusedSecret(error); // true for AADSTS7000215 and 7000222
 * ```
 */
export function isRefusedSecret(error: unknown): boolean {
  return isAuthenticationError(error) && error.errorResponse.error === "invalid_client";
}

function aadstsOf(error: unknown): string {
  const codes = isAuthenticationError(error) ? error.errorResponse.errorCodes : undefined;
  return codes !== undefined && codes.length > 0
    ? codes.map((code) => `AADSTS${code}`).join(", ")
    : "invalid_client";
}

/**
 * The acquisition of one credential with the secret fail-over described above.
 *
 * @example
 * ```ts
 * const acquire = withSecretFailover({ secrets, attempt });
 * const token = await acquire(key, signal);
 * ```
 */
export function withSecretFailover(
  options: SecretFailoverOptions,
): (key: CredentialKey, signal: AbortSignal) => Promise<AcquiredToken> {
  const { secrets, attempt } = options;
  // One warning per refused secret, not one per key that met the refusal.
  let warnedVersion = 0;
  const markRefused = (secret: SecretSnapshot, error: unknown): void => {
    if (warnedVersion === secret.version) return;
    warnedVersion = secret.version;
    logger.warning(
      `ClientSecretCredential: client secret ${secret.fingerprint} was refused (${aadstsOf(error)}); token requests keep failing until a valid secret is mounted (or the app registration accepts this one).`,
    );
  };

  return async (key, signal) => {
    const secret = await secrets.get(signal);
    try {
      return await attempt(secret, key, signal);
    } catch (error) {
      if (!isRefusedSecret(error)) throw error;
      const newest = secrets.current();
      if (newest === undefined || newest.version <= secret.version) {
        markRefused(secret, error);
        throw error;
      }
      logger.warning(
        `ClientSecretCredential: client secret ${secret.fingerprint} was refused (${aadstsOf(error)}); retrying once, at once, with the newer secret ${newest.fingerprint}.`,
      );
      try {
        return await attempt(newest, key, signal);
      } catch (retryError) {
        if (isRefusedSecret(retryError)) markRefused(newest, retryError);
        throw retryError;
      }
    }
  };
}
