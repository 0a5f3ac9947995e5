import { randomUUID } from "node:crypto";

/** An error answer of the token endpoint: status, OAuth error, AADSTS code and description. */
export interface EntraError {
  readonly status: number;
  readonly error: string;
  readonly aadsts: number;
  /** The description after `AADSTSnnn: `. */
  readonly description: string;
}

/** The JSON body Entra ID sends with an error. */
export interface EntraErrorBody {
  readonly error: string;
  readonly error_description: string;
  readonly error_codes: readonly number[];
  readonly timestamp: string;
  readonly trace_id: string;
  readonly correlation_id: string;
  readonly error_uri: string;
}

/**
 * The errors Entra ID answers to client-credentials requests, with the status, OAuth error
 * and AADSTS code it really uses (descriptions shortened from the service's own).
 *
 * @example
 * ```ts
 * const { status, error } = entraErrors.invalidSecret("my-app"); // 401, "invalid_client"
 * ```
 */
export const entraErrors = {
  invalidSecret: (clientId: string): EntraError => ({
    status: 401,
    error: "invalid_client",
    aadsts: 7000215,
    description: `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
  }),
  expiredSecret: (clientId: string): EntraError => ({
    status: 401,
    error: "invalid_client",
    aadsts: 7000222,
    description: `The provided client secret keys for app '${clientId}' are expired. Create new keys for your app, or consider using certificate credentials for added security.`,
  }),
  missingSecret: (): EntraError => ({
    status: 401,
    error: "invalid_client",
    aadsts: 7000216,
    description:
      "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
  }),
  unknownApplication: (clientId: string, tenant: string): EntraError => ({
    status: 400,
    error: "unauthorized_client",
    aadsts: 700016,
    description: `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  }),
  unknownTenant: (tenant: string): EntraError => ({
    status: 400,
    error: "invalid_request",
    aadsts: 90002,
    description: `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  }),
  invalidScope: (scope: string): EntraError => ({
    status: 400,
    error: "invalid_scope",
    aadsts: 70011,
    description: `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid. The .default suffix is required for the client credentials flow.`,
  }),
  missingParameter: (name: string): EntraError => ({
    status: 400,
    error: "invalid_request",
    aadsts: 900144,
    description: `The request body must contain the following parameter: '${name}'.`,
  }),
  unsupportedGrantType: (grantType: string): EntraError => ({
    status: 400,
    error: "unsupported_grant_type",
    aadsts: 70003,
    description: `The app requested an unsupported grant type '${grantType}'. The emulator supports 'client_credentials' only.`,
  }),
  /** The default answer of an injected fault with only a status. */
  forStatus: (status: number): EntraError =>
    status === 429 || status === 503
      ? {
          status,
          error: "temporarily_unavailable",
          aadsts: 90033,
          description: "A transient error has occurred. Please try again.",
        }
      : status >= 500
        ? {
            status,
            error: "server_error",
            aadsts: 90033,
            description: "A transient error has occurred. Please try again.",
          }
        : {
            status,
            error: "invalid_request",
            aadsts: 90014,
            description: "The request was refused by a fault injected into the emulator.",
          },
} as const;

/**
 * Builds the body Entra ID sends with an error: the description carries the AADSTS code,
 * trace id, correlation id and timestamp on `\r\n`-separated lines, as the real service does.
 *
 * @example
 * ```ts
 * entraErrorBody(entraErrors.unknownTenant("t"), { now: Date.now(), authorityHost, correlationId });
 * ```
 */
export function entraErrorBody(
  error: EntraError,
  context: {
    readonly now: number;
    readonly authorityHost: string;
    readonly correlationId?: string | undefined;
  },
): EntraErrorBody {
  const traceId = randomUUID();
  const correlationId = context.correlationId ?? randomUUID();
  const timestamp = new Date(context.now).toISOString().replace("T", " ").replace("Z", "Z");
  return {
    error: error.error,
    error_description: `AADSTS${error.aadsts}: ${error.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [error.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${context.authorityHost}/error?code=${error.aadsts}`,
  };
}
