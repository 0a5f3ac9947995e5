/**
 * The options of `ClientSecretCredential` and of its `token$`, each with its default: what a
 * user configures, apart from the credential that acts on them.
 */
import type { SchedulerLike } from "rxjs";
import type { TokenStore } from "../stores/index.js";
import type { RefreshPolicyOptions } from "../streams/index.js";

/** Azure Identity's `TokenCachePersistenceOptions`. */
export interface TokenCachePersistenceOptions {
  /**
   * Whether tokens persist between restarts: in files under the per-user cache directory
   * (`$XDG_CACHE_HOME/rx-identity`, else `~/.cache/rx-identity`; `%LOCALAPPDATA%\rx-identity`
   * on Windows), sealed with AES-256-GCM under a key derived from the client secret. A
   * restarted process serves a still-fresh token with no request.
   * @default false
   */
  readonly enabled: boolean;
  /**
   * Name of the persistent cache: the files are `<name>.nocae` and `<name>.cae`. Letters,
   * digits, `.`, `_` and `-`.
   * @default "rx-identity"
   */
  readonly name?: string | undefined;
  /**
   * Accepted for compatibility with Azure Identity. rx-identity always seals what it writes
   * with a key derived from the client secret, so no keychain is needed.
   * @default false
   */
  readonly unsafeAllowUnencryptedStorage?: boolean | undefined;
}

/** Azure Identity's `loggingOptions`. */
export interface CredentialLoggingOptions {
  /**
   * Accepted for compatibility with Azure Identity. rx-identity logs tenant and client id
   * of its own configuration, never a token's account identifiers.
   * @default false
   */
  readonly allowLoggingAccountIdentifiers?: boolean | undefined;
  /**
   * Accepted for compatibility with Azure Identity. MSAL messages marked as holding PII are
   * never logged by rx-identity, whatever this says (secrets and tokens stay out of logs).
   * @default false
   */
  readonly enableUnsafeSupportLogging?: boolean | undefined;
}

/** Options of {@link ClientSecretCredential}. */
export interface ClientSecretCredentialOptions {
  /**
   * The Entra ID authority host: an absolute `https:` URL without credentials, query or
   * fragment.
   * @default process.env.AZURE_AUTHORITY_HOST, else "https://login.microsoftonline.com"
   */
  readonly authorityHost?: string | undefined;
  /**
   * Tenants, besides the credential's own, that `getToken(..., { tenantId })` may ask for;
   * `"*"` allows any tenant.
   * @default []
   */
  readonly additionallyAllowedTenants?: readonly string[] | undefined;
  /**
   * Skip MSAL's instance discovery and trust the authority host as given (for private
   * clouds, Azure Stack, and the local emulator). Non-Microsoft hosts are trusted as given
   * in any case.
   * @default false
   */
  readonly disableInstanceDiscovery?: boolean | undefined;
  /**
   * Persistent token cache, as in Azure Identity: `{ enabled: true }` keeps tokens in an
   * encrypted file cache that survives restarts. Not together with `tokenStore`.
   * @default undefined (tokens live in memory)
   */
  readonly tokenCachePersistenceOptions?: TokenCachePersistenceOptions | undefined;
  /**
   * Where tokens are shared with other processes, such as a fleet's Redis
   * (`await createRedisTokenStore({ url, clientSecret, credentialId })`): read before each
   * acquisition, written after it; with a store that has leases, one process of the fleet
   * refreshes a key while the others take its token. If the store fails, the credential
   * acquires on its own (and logs it). The caller owns the store: `close()` does not close it.
   * @default undefined (tokens live in memory)
   */
  readonly tokenStore?: TokenStore | undefined;
  /**
   * How long a `tokenStore` refresh lease lasts, so how long the fleet waits for a process
   * that died while refreshing: longer than the worst acquisition (the authority metadata GET
   * and the token POST, each up to the 30 s request timeout) plus a margin.
   * @default 65_000
   */
  readonly tokenStoreLeaseMs?: number | undefined;
  /**
   * Refresh schedule, forced window and retry knobs (see `RefreshPolicyOptions`).
   * @default DEFAULT_REFRESH_POLICY
   */
  readonly refresh?: Partial<RefreshPolicyOptions> | undefined;
  /**
   * The clock and timers of the credential: pass an rxjs `TestScheduler` or a virtual-time
   * scheduler in tests. Token timestamps are on this scheduler's `now()`.
   * @default a scheduler whose timers do not keep Node alive
   */
  readonly scheduler?: SchedulerLike | undefined;
  /**
   * Extra certificate authorities (PEM) trusted for this credential's requests only, on top
   * of Node's roots. For tests and examples against the local emulator
   * (`emulator.caCertificate`).
   * @default undefined (Node's usual roots)
   */
  readonly ca?: string | readonly string[] | undefined;
  /**
   * When `clientSecret` is an `Observable`: how long the first token request waits for its
   * first value before it fails with `CredentialUnavailableError`, in milliseconds.
   * @default 30_000
   */
  readonly secretTimeoutMs?: number | undefined;
  /**
   * Logging options, as Azure Identity has them.
   * @default {}
   */
  readonly loggingOptions?: CredentialLoggingOptions | undefined;
  /**
   * OpenTelemetry options. Spans and metrics go to the globally registered providers when
   * `@opentelemetry/api` is installed; nothing needs configuring.
   * @default {}
   */
  readonly telemetry?: CredentialTelemetryOptions | undefined;
}

/** Options of the credential's OpenTelemetry spans and metrics. */
export interface CredentialTelemetryOptions {
  /**
   * Add the scopes (`rx_identity.scopes`) to the request metrics' attributes: one series per
   * scope set, so leave it off when the scopes are many or built per tenant.
   * @default false
   */
  readonly scopeAttribute?: boolean | undefined;
}

/** Options of {@link ClientSecretCredential.token$}. */
export interface TokenStreamOptions {
  /**
   * Tenant to ask (must be allowed by `additionallyAllowedTenants`).
   * @default the credential's tenant
   */
  readonly tenantId?: string | undefined;
  /**
   * Claims JSON to request (a claims challenge). Such a stream is not refreshed in the
   * background.
   * @default undefined
   */
  readonly claims?: string | undefined;
  /**
   * Request a CAE-enabled token (client capability `cp1`).
   * @default false
   */
  readonly enableCae?: boolean | undefined;
}
