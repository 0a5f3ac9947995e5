/**
 * Workload identity federation, as the emulator's token endpoint does it: a
 * `client_credentials` request may authenticate with a `client_assertion` of type
 * jwt-bearer (what `@azure/identity`'s `WorkloadIdentityCredential` and
 * `ClientAssertionCredential` send, read from a Kubernetes service account token file)
 * instead of a client secret. Entra ID accepts such an assertion when a federated identity
 * credential of the application trusts its issuer; the emulator trusts the issuers named in
 * `trustedIssuers`, and the assertion must be signed by the emulator's own key (mint one with
 * `emulator.mintToken`), carry the audience `api://AzureADTokenExchange`, and be inside its
 * `nbf`..`exp` window.
 */
import type { EntraError } from "./entra-errors.js";
import type { SigningKey } from "./signing-key.js";

/** The `client_assertion_type` of a JWT client assertion (RFC 7523). */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** The audience Entra ID requires of a federated assertion. */
export const FEDERATION_AUDIENCE = "api://AzureADTokenExchange";

/** The verdict on one assertion: its `jti` when accepted, or Entra ID's error. */
export type AssertionVerdict =
  | { readonly accepted: true; readonly id: string | undefined }
  | { readonly accepted: false; readonly error: EntraError };

function invalidClient(aadsts: number, description: string): AssertionVerdict {
  return { accepted: false, error: { status: 401, error: "invalid_client", aadsts, description } };
}

/**
 * Checks a client assertion as Entra ID's token endpoint does for a federated credential.
 *
 * @example
 * ```ts
 * checkClientAssertion(jwt, JWT_BEARER, { trustedIssuers: ["https://oidc.example/"], signingKey, now: Date.now() });
 * ```
 */
export function checkClientAssertion(
  assertion: string,
  assertionType: string | undefined,
  context: {
    readonly trustedIssuers: readonly string[];
    readonly signingKey: SigningKey;
    /** Epoch milliseconds. */
    readonly now: number;
  },
): AssertionVerdict {
  if (assertionType !== JWT_BEARER) {
    return {
      accepted: false,
      error: {
        status: 400,
        error: "invalid_request",
        aadsts: 50027,
        description: `client_assertion_type must be '${JWT_BEARER}', got '${String(assertionType).slice(0, 80)}'.`,
      },
    };
  }
  let payload: Record<string, unknown>;
  try {
    payload = context.signingKey.verify(assertion);
  } catch {
    return invalidClient(
      50027,
      "JWT token is invalid or malformed: the client assertion's signature does not verify.",
    );
  }
  const issuer = payload["iss"];
  if (typeof issuer !== "string" || !context.trustedIssuers.includes(issuer)) {
    return invalidClient(
      70021,
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(issuer).slice(0, 200)}'.`,
    );
  }
  const audience = payload["aud"];
  const audiences = Array.isArray(audience) ? audience : [audience];
  if (!audiences.includes(FEDERATION_AUDIENCE)) {
    return invalidClient(
      70021,
      `No matching federated identity record found for presented assertion audience '${String(audience).slice(0, 200)}': expected '${FEDERATION_AUDIENCE}'.`,
    );
  }
  const seconds = Math.floor(context.now / 1000);
  const exp = payload["exp"];
  const nbf = payload["nbf"];
  if (typeof exp !== "number" || exp <= seconds || (typeof nbf === "number" && nbf > seconds)) {
    return invalidClient(
      700024,
      `Client assertion is not within its valid time range. Current time: ${new Date(context.now).toISOString()}, assertion valid from ${typeof nbf === "number" ? new Date(nbf * 1000).toISOString() : "(no nbf)"}, expiry time of assertion ${typeof exp === "number" ? new Date(exp * 1000).toISOString() : "(no exp)"}.`,
    );
  }
  const id = payload["jti"];
  return { accepted: true, id: typeof id === "string" ? id : undefined };
}
