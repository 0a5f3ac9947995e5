import type { ClientSecretOptions } from "./client-secrets.js";

/** Options of {@link startEntraEmulator}. */
export interface EntraEmulatorOptions {
  /**
   * TCP port on 127.0.0.1. `0` picks a free one (read it from `authorityHost`).
   * @default 0
   */
  readonly port?: number;
  /**
   * Lifetime of issued tokens (`expires_in`), in seconds, unless the application sets its own.
   * @default 3599
   */
  readonly tokenLifetimeSeconds?: number;
  /**
   * `refresh_in` of issued tokens, in seconds, unless the application sets its own. Entra ID
   * sends it for long-lived tokens; the emulator sends it only when set.
   * @default undefined (not sent)
   */
  readonly refreshInSeconds?: number;
  /**
   * The server certificate and key (PEM). Without it the emulator generates a self-signed
   * certificate for `127.0.0.1`, `::1` and `localhost` at start.
   * @default undefined (generated)
   */
  readonly tls?: { readonly cert: string; readonly key: string };
  /**
   * Which tenants exist. `"*"` accepts any well-formed tenant id; a list makes every other
   * tenant fail at the token endpoint with AADSTS90002 (tenants named by registered
   * applications are added to the list).
   * @default "*"
   */
  readonly tenants?: "*" | readonly string[];
  /**
   * The emulator's clock, in epoch milliseconds: `iat`, `nbf`, `exp`, secret expiry and
   * timestamps are read from it. Give a virtual clock to line tokens up with virtual time.
   * @default Date.now
   */
  readonly now?: () => number;
  /**
   * Issuers whose client assertions the token endpoint accepts in place of a client secret,
   * as Entra ID does for an application with a federated identity credential (workload
   * identity: `@azure/identity`'s `WorkloadIdentityCredential` sends the service account
   * token of `AZURE_FEDERATED_TOKEN_FILE` as `client_assertion`, of type
   * `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`). An assertion is accepted for
   * any registered application when it is signed by the emulator's key (mint one with
   * `mintToken({ audience: "api://AzureADTokenExchange", tenant, claims: { iss, sub } })`),
   * its `iss` is listed here, its `aud` is `api://AzureADTokenExchange` and now is inside its
   * `nbf`..`exp`; otherwise the answer is 401 `invalid_client` (AADSTS70021 for an issuer or
   * audience not trusted, 700024 outside the time range, 50027 for a bad signature).
   * @default [] (no assertion is accepted)
   */
  readonly trustedIssuers?: readonly string[];
  /**
   * The managed identity served at {@link EntraEmulator.identityEndpoint} (App Service
   * style): its tenant (`tid`), client id (`appid`) and token lifetime.
   * @default { tenant: "00000000-0000-4000-8000-0000000000a1", clientId: "00000000-0000-4000-8000-0000000000b2", tokenLifetimeSeconds: the emulator's }
   */
  readonly managedIdentity?: ManagedIdentityOptions;
}

/** Options of the emulator's managed identity endpoint. */
export interface ManagedIdentityOptions {
  /**
   * `tid` of its tokens, and the tenant its requests are counted under.
   * @default "00000000-0000-4000-8000-0000000000a1"
   */
  readonly tenant?: string;
  /**
   * `appid` of its tokens, and the client id its requests are counted under.
   * @default "00000000-0000-4000-8000-0000000000b2"
   */
  readonly clientId?: string;
  /**
   * Lifetime of its tokens, in seconds (answered as `expires_on`).
   * @default the emulator's `tokenLifetimeSeconds`
   */
  readonly tokenLifetimeSeconds?: number;
}

/** An application (service principal) the emulator knows: see {@link EntraEmulator.registerApplication}. */
export interface ApplicationRegistration {
  /** The application (client) id, usually a GUID. */
  readonly clientId: string;
  /** Its first client secret (add more with {@link EntraEmulator.addClientSecret}). */
  readonly clientSecret: string;
  /**
   * Tenants where the application has a service principal, or `"*"` for every tenant.
   * @default "*"
   */
  readonly tenants?: "*" | readonly string[];
  /**
   * When `clientSecret` expires: after it, requests with it fail with 401 AADSTS7000222.
   * @default undefined (never)
   */
  readonly secretExpiresOn?: Date;
  /**
   * Lifetime of this application's tokens, in seconds.
   * @default the emulator's `tokenLifetimeSeconds`
   */
  readonly tokenLifetimeSeconds?: number;
  /**
   * `refresh_in` of this application's tokens, in seconds.
   * @default the emulator's `refreshInSeconds`
   */
  readonly refreshInSeconds?: number;
  /**
   * The service principal's object id, put in tokens as `oid` and `sub`.
   * @default a GUID derived from the client id
   */
  readonly objectId?: string;
}

/** Which token requests a fault applies to; every given field must match. */
export interface FaultMatch {
  /** The tenant in the request path (compared case-insensitively). */
  readonly tenant?: string;
  /** One of the requested scopes, such as `https://storage.azure.com/.default`. */
  readonly scope?: string;
  /** The client id of the request. */
  readonly clientId?: string;
}

/**
 * A failure the token endpoint produces instead of (or before) its normal answer.
 * Fields combine: `{ delayMs: 500, status: 503 }` waits, then fails.
 */
export interface FaultSpec {
  /**
   * Which requests it applies to.
   * @default {} (every token request)
   */
  readonly match?: FaultMatch;
  /**
   * How many matching requests it applies to; `Infinity` until cleared.
   * @default 1
   */
  readonly times?: number;
  /**
   * HTTP status of an error answer (Entra-shaped body).
   * @default 503 when `error` or `aadsts` is given, otherwise no error answer
   */
  readonly status?: number;
  /**
   * OAuth `error` of the answer.
   * @default derived from `status` (`temporarily_unavailable` for 429 and 503, `server_error` for other 5xx, `invalid_request` otherwise)
   */
  readonly error?: string;
  /**
   * AADSTS code put in `error_codes` and in front of the description.
   * @default derived from `status` (90033 for 429 and 5xx, 90014 otherwise)
   */
  readonly aadsts?: number;
  /**
   * Description after the `AADSTSnnn: ` prefix.
   * @default a realistic one for the code
   */
  readonly description?: string;
  /**
   * `Retry-After` header: a number of seconds, or a string sent as is (an HTTP-date).
   * @default undefined (not sent)
   */
  readonly retryAfter?: number | string;
  /**
   * Milliseconds to wait before answering (or failing).
   * @default 0
   */
  readonly delayMs?: number;
  /** Destroy the connection without an answer. */
  readonly drop?: true;
  /** Answer 200 with a truncated, unparseable JSON body. */
  readonly malformedJson?: true;
  /** Answer 200 with a token but no `expires_in` / `ext_expires_in`. */
  readonly omitExpiresIn?: true;
  /**
   * Answer 200 with a token whose `expires_in` and `ext_expires_in` are this value, sent as
   * is (a string stays a JSON string: `"0x10"`, `"3599"`), to test how clients parse odd
   * lifetimes. The token's `exp` keeps the normal lifetime.
   */
  readonly expiresIn?: number | string;
  /**
   * With an error answer (`status`, `error` or `aadsts`): append the raw request body and
   * `Authorization` header to the error description, as some gateways and misconfigured
   * services echo what they received. For secret-scrubbing tests.
   */
  readonly echoRequest?: true;
  /** Never answer; the connection stays open until the client gives up or `stop()`. */
  readonly hang?: true;
}

/** A fault returned by {@link EntraEmulator.injectFault}. */
export interface FaultHandle {
  /** How many requests it has hit so far. */
  readonly hits: number;
  /** How many more requests it will hit (`Infinity` for unbounded). */
  readonly remaining: number;
  /** Stops it from hitting more requests. */
  remove(): void;
}

/** One request to the token endpoint, as {@link EntraEmulator.requests} records it. */
export interface TokenRequestRecord {
  /** The tenant in the path, as sent. */
  readonly tenant: string;
  /** `client_id` (from the form or from HTTP Basic). */
  readonly clientId: string;
  /** The requested scopes, split on spaces. */
  readonly scopes: readonly string[];
  /**
   * The `claims` parameter without the `xms_cc` client capabilities MSAL merges into it,
   * as compact JSON; `undefined` when nothing else was asked.
   */
  readonly claims: string | undefined;
  /** Client capabilities (`xms_cc` values, such as `["cp1"]` for CAE). */
  readonly clientCapabilities: readonly string[];
  /**
   * How the client authenticated: form body (`client_secret`), HTTP Basic, a
   * `client_assertion` (workload identity), or the managed identity endpoint's
   * `X-IDENTITY-HEADER`.
   */
  readonly authMethod: "post" | "basic" | "assertion" | "managed-identity" | "none";
  /**
   * The `jti` of the client assertion that authenticated the request (workload identity), so
   * a test can tell which assertion file contents were sent.
   * @default undefined (no accepted assertion)
   */
  readonly clientAssertionId?: string | undefined;
  /** HTTP status answered; `0` when the connection was dropped or the request hung. */
  readonly status: number;
  /** Whether an injected fault shaped the answer. */
  readonly faulted: boolean;
  /** When the request arrived (the emulator's clock, epoch milliseconds). */
  readonly at: number;
}

/** Filter of {@link EntraEmulator.requestCount}; every given field must match. */
export interface RequestFilter {
  /** The tenant (compared case-insensitively). */
  readonly tenant?: string;
  /** One of the requested scopes. */
  readonly scope?: string;
  /** The client id. */
  readonly clientId?: string;
  /** The claims (compared as JSON values), or `null` for requests without claims. */
  readonly claims?: string | object | null;
  /** Only requests that asked for CAE (`cp1`) when `true`, or that did not when `false`. */
  readonly cae?: boolean;
  /** The HTTP status answered. */
  readonly status?: number;
}

/** What {@link EntraEmulator.mintToken} signs. */
export interface MintTokenOptions {
  /** `aud`, such as `https://storage.azure.com`. */
  readonly audience: string;
  /** `tid`, and the tenant in `iss`. */
  readonly tenant: string;
  /**
   * Seconds from `notBefore` (or now) to `exp`; negative for an already expired token.
   * @default 3599
   */
  readonly lifetimeSeconds?: number;
  /**
   * `nbf` and `iat`.
   * @default now
   */
  readonly notBefore?: Date;
  /**
   * `appid` and `azp`.
   * @default "00000000-0000-0000-0000-000000000000"
   */
  readonly clientId?: string;
  /**
   * More claims, which override the defaults (for example `{ iss: "https://evil/" }`).
   * @default {}
   */
  readonly claims?: Record<string, unknown>;
}

/** A running Entra ID emulator: see {@link startEntraEmulator}. */
export interface EntraEmulator {
  /** `https://127.0.0.1:PORT`: the credential's `authorityHost`. */
  readonly authorityHost: string;
  /** `127.0.0.1:PORT`: the entry for MSAL's `knownAuthorities`. */
  readonly host: string;
  /** The port it listens on. */
  readonly port: number;
  /** PEM of the server certificate, for the credential's `ca` option. */
  readonly caCertificate: string;
  /** Path of a PEM file holding `caCertificate`, for `NODE_EXTRA_CA_CERTS`; removed by `stop()`. */
  readonly caFile: string;
  /**
   * URL of an App Service-style managed identity endpoint on this server
   * (`https://127.0.0.1:PORT/msi/token`): set it as `IDENTITY_ENDPOINT`, with
   * `identityHeader` as `IDENTITY_HEADER`, and `@azure/identity`'s `ManagedIdentityCredential`
   * asks it for tokens (`GET ?resource=...&api-version=2019-08-01` with `X-IDENTITY-HEADER`,
   * answered with `{ access_token, expires_on, resource, token_type }`). Its requests are
   * counted with the token endpoint's, under the managed identity's tenant and client id,
   * with the resource as a `/.default` scope; faults apply to them too.
   */
  readonly identityEndpoint: string;
  /** The secret the managed identity endpoint expects in `X-IDENTITY-HEADER` (random per start). */
  readonly identityHeader: string;
  /** The JSON Web Key Set that verifies its tokens (also served at `/{tenant}/discovery/v2.0/keys`). */
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] };
  /** Registers (or replaces) an application; returns `registration`. */
  registerApplication(registration: ApplicationRegistration): ApplicationRegistration;
  /** Forgets an application: later requests fail with AADSTS700016. */
  removeApplication(clientId: string): void;
  /**
   * Adds a client secret to a registered application, beside the ones it has (as Entra ID
   * allows): requests with any of them succeed. Adding a secret it holds sets its expiry.
   * @throws RangeError when no such application is registered
   */
  addClientSecret(clientId: string, secret: string, options?: ClientSecretOptions): void;
  /**
   * Removes a client secret: later requests with it fail with 401 `invalid_client`
   * AADSTS7000215, as with a wrong one.
   * @throws RangeError when the application or the secret is unknown
   */
  revokeClientSecret(clientId: string, secret: string): void;
  /**
   * Makes a client secret expire at `at` (default: now): from then on requests with it fail
   * with 401 `invalid_client` AADSTS7000222.
   * @throws RangeError when the application or the secret is unknown
   */
  expireClientSecret(clientId: string, secret: string, at?: Date): void;
  /** Makes matching token requests fail, hang, slow down or break. */
  injectFault(fault: FaultSpec): FaultHandle;
  /** Removes every fault. */
  clearFaults(): void;
  /** Milliseconds added before every token answer (`0` to stop). */
  setLatency(ms: number): void;
  /** Every token request so far, oldest first (a copy). */
  readonly requests: readonly TokenRequestRecord[];
  /** How many token requests match `filter` (all of them without one). */
  requestCount(filter?: RequestFilter): number;
  /** Forgets the recorded requests. */
  clearRequests(): void;
  /** Resolves once `count` token requests (in total, since start or `clearRequests`) have arrived. */
  waitForRequests(count: number): Promise<void>;
  /** Signs a token with the emulator's key, for tests that need a wrong or expired one. */
  mintToken(options: MintTokenOptions): string;
  /** Verifies a token's signature with the emulator's key and returns its payload, or throws. */
  verifyToken(token: string): Record<string, unknown>;
  /** Closes the server and every socket (idle, delayed and hung ones) and removes `caFile`. */
  stop(): Promise<void>;
  /** `await using emulator = await startEntraEmulator()` stops it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}
