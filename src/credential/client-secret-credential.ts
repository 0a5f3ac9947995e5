import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { isObservable, type Observable } from "rxjs";
import { CredentialUnavailableError, InvalidArgumentError } from "../errors/index.js";
import type { TokenStore } from "../stores/index.js";
import { unrefScheduler } from "../streams/index.js";
import { createAcquirer, type Acquirer } from "./acquire.js";
import type {
  ClientSecretCredentialOptions,
  CredentialLoggingOptions,
  CredentialTelemetryOptions,
  TokenCachePersistenceOptions,
  TokenStreamOptions,
} from "./credential-options.js";
import type { CredentialEvent, CredentialStatus } from "./events.js";
import { EngineCredential } from "./engine-credential.js";
import { logger } from "./logger.js";
import { classify } from "./map-error.js";
import { openPersistentCache, sharedCacheOf } from "./stores.js";
import { secretFromFile } from "./secret-from-file.js";
import { createSecretSource, type SecretSource } from "./secret-source.js";
import { resolveTenant } from "./tenant.js";
import {
  normalizeAuthorityHost,
  validateAllowedTenants,
  validateClientId,
  validateClientSecret,
  validateTenantId,
} from "./validation.js";

/** The authority host used when neither the option nor `AZURE_AUTHORITY_HOST` is set. */
export const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";

export type {
  ClientSecretCredentialOptions,
  CredentialLoggingOptions,
  CredentialTelemetryOptions,
  TokenCachePersistenceOptions,
  TokenStreamOptions,
};

/**
 * Authenticates a service principal with a client secret against Microsoft Entra ID: a
 * drop-in for `@azure/identity`'s `ClientSecretCredential` (it passes `isTokenCredential`)
 * whose tokens are cached, single-flight, refreshed before they expire, and also available
 * as rxjs streams.
 *
 * @example
 * ```ts
 * const credential = new ClientSecretCredential(tenantId, clientId, clientSecret);
 * const { token } = await credential.getToken("https://storage.azure.com/.default");
 * credential.token$("https://storage.azure.com/.default").subscribe((t) => socket.reauth(t.token));
 * await credential.close();
 * ```
 */
export class ClientSecretCredential implements TokenCredential, AsyncDisposable {
  /** The credential's tenant. */
  readonly tenantId: string;
  /** The application (client) id. */
  readonly clientId: string;
  /** The authority host, without a trailing `/`. */
  readonly authorityHost: string;

  readonly #engine: EngineCredential;
  readonly #acquirer: Acquirer;
  readonly #secrets: SecretSource;
  /** The file cache this credential opened (a given `tokenStore` is the caller's to close). */
  readonly #ownedStore: Promise<TokenStore> | undefined;
  #closed = false;

  /**
   * Every {@link CredentialEvent} of this credential as it happens (a hot stream: only events
   * after subscribing): acquisitions started, succeeded and failed, tokens served stale or
   * taken from the token store, the store going away and coming back, the client secret
   * rotated. Events carry tenant, scopes and CAE flag, never a token, a secret or claims.
   * Completes on `close()`. A cache hit makes no event. The `@azure/logger` lines are written
   * by a subscriber of this stream.
   *
   * A getter over a private field: no own property, so `JSON.stringify` and `util.inspect`
   * of the credential show what they always did.
   *
   * @example
   * ```ts
   * credential.events$.subscribe((event) => {
   *   if (event.type === "acquisition-failed" && !event.failure.transient) {
   *     console.error(`token for ${event.scopes.join(" ")} refused: ${event.failure.message}`);
   *   }
   * });
   * ```
   */
  get events$(): Observable<CredentialEvent> {
    return this.#engine.events$;
  }

  /**
   * @param tenantId - the Entra ID tenant (directory) id or domain
   * @param clientId - the application (client) id of the app registration
   * @param clientSecret - a client secret of the app registration (never logged or shown), or
   *   an `Observable<string>` of the current one (such as `secretFromFile(path)`): each value
   *   replaces the one before, tokens already held stay in use, new requests use the newest
   *   secret, and a refused secret (`invalid_client`) is retried once with a newer one
   * @param options - see {@link ClientSecretCredentialOptions}
   * @throws {@link InvalidArgumentError} or {@link CredentialUnavailableError} for bad input
   */
  constructor(
    tenantId: string,
    clientId: string,
    clientSecret: string | Observable<string>,
    options: ClientSecretCredentialOptions = {},
  ) {
    if (tenantId === undefined || tenantId === null || (tenantId as unknown) === "") {
      throw new CredentialUnavailableError(
        "ClientSecretCredential: tenantId is a required parameter: pass the directory (tenant) id of the app registration.",
      );
    }
    validateTenantId(tenantId, "tenantId");
    validateClientId(clientId);
    if (!isObservable(clientSecret)) validateClientSecret(clientSecret);
    const secretTimeoutMs = options.secretTimeoutMs;
    if (
      secretTimeoutMs !== undefined &&
      !(
        typeof secretTimeoutMs === "number" &&
        Number.isFinite(secretTimeoutMs) &&
        secretTimeoutMs > 0
      )
    ) {
      throw new InvalidArgumentError(
        `ClientSecretCredential: secretTimeoutMs must be a positive number of milliseconds, got ${String(secretTimeoutMs)}.`,
      );
    }
    const authorityHost = normalizeAuthorityHost(
      options.authorityHost ?? (process.env["AZURE_AUTHORITY_HOST"] || DEFAULT_AUTHORITY_HOST),
    );
    const persistence = options.tokenCachePersistenceOptions;
    if (persistence?.enabled === true && options.tokenStore !== undefined) {
      throw new InvalidArgumentError(
        "ClientSecretCredential: pass either `tokenStore` or `tokenCachePersistenceOptions: { enabled: true }`, not both.",
      );
    }
    this.tenantId = tenantId;
    this.clientId = clientId;
    this.authorityHost = authorityHost;
    const allowedTenants = validateAllowedTenants(options.additionallyAllowedTenants);
    const scheduler = options.scheduler ?? unrefScheduler;
    this.#secrets = createSecretSource(clientSecret, {
      scheduler,
      timeoutMs: secretTimeoutMs,
      // A refused secret's back-off ends with a new one: keys still holding a token whose
      // refresh was refused are refreshed at once with it (issue #13), not after 60 s.
      // (The engine is not there yet if the Observable rotates while it is being subscribed,
      // inside this constructor: no token was asked for yet, and nobody can have subscribed
      // to events$, so that rotation is neither evented nor logged.)
      // The event first: the refreshes it starts come after it in events$ and the log.
      onRotate: (next, previous) => {
        this.#engine?.onSecretRotated(next, previous);
        this.#engine?.retryRefused();
      },
    });
    this.#ownedStore =
      persistence?.enabled === true
        ? openPersistentCache({
            secrets: this.#secrets,
            name: persistence.name,
            now: () => scheduler.now(),
          })
        : undefined;
    // An unopenable cache (bad name, unwritable directory) is logged; tokens then live in memory.
    this.#ownedStore?.catch((error: unknown) =>
      logger.warning(
        `ClientSecretCredential: the persistent token cache could not be opened (${error instanceof Error ? error.message : String(error)}); tokens are cached in memory only.`,
      ),
    );
    const store = options.tokenStore ?? this.#ownedStore;
    this.#acquirer = createAcquirer({
      clientId,
      secrets: this.#secrets,
      authorityHost,
      defaultTenant: tenantId,
      disableInstanceDiscovery: options.disableInstanceDiscovery,
      ca: options.ca,
      scheduler,
    });
    this.#engine = new EngineCredential({
      defaultTenant: tenantId,
      resolveTenant: (requested) => resolveTenant(tenantId, requested, allowedTenants),
      acquire: this.#acquirer.acquire,
      classify,
      scheduler,
      policy: options.refresh,
      authorityHost,
      scopeAttribute: options.telemetry?.scopeAttribute,
      sharedCache:
        store === undefined ? undefined : sharedCacheOf(store, { authorityHost, clientId }),
      leaseTtlMs: options.tokenStoreLeaseMs,
    });
    logger.info(
      `ClientSecretCredential created: tenant=${tenantId} clientId=${clientId} authorityHost=${authorityHost}`,
    );
  }

  /**
   * Builds a credential from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
   * `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`-separated), as the
   * Azure SDKs read them. Explicit `options` win over the environment.
   * `AZURE_CLIENT_SECRET_FILE` names a file holding the secret instead (a mounted Kubernetes
   * secret, say): it is followed with {@link secretFromFile}, so a rotated secret is used
   * without a restart; it wins over `AZURE_CLIENT_SECRET`.
   *
   * @throws {@link CredentialUnavailableError} naming every missing variable
   * @example
   * ```ts
   * const credential = ClientSecretCredential.fromEnvironment();
   * ```
   */
  static fromEnvironment(
    options: ClientSecretCredentialOptions = {},
    env: NodeJS.ProcessEnv = process.env,
  ): ClientSecretCredential {
    const read = (name: string): string | undefined => {
      const value = env[name];
      return value === undefined || value.trim() === "" ? undefined : value.trim();
    };
    const tenantId = read("AZURE_TENANT_ID");
    const clientId = read("AZURE_CLIENT_ID");
    const secretFile = read("AZURE_CLIENT_SECRET_FILE");
    const clientSecret =
      secretFile !== undefined ? secretFromFile(secretFile) : env["AZURE_CLIENT_SECRET"];
    const missing = [
      tenantId === undefined ? "AZURE_TENANT_ID" : undefined,
      clientId === undefined ? "AZURE_CLIENT_ID" : undefined,
      clientSecret === undefined || clientSecret === ""
        ? "AZURE_CLIENT_SECRET (or AZURE_CLIENT_SECRET_FILE)"
        : undefined,
    ].filter((name): name is string => name !== undefined);
    if (tenantId === undefined || clientId === undefined || missing.length > 0) {
      throw new CredentialUnavailableError(
        `ClientSecretCredential: environment variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not set: set ${missing.length > 1 ? "them" : "it"} to the app registration's values, or construct the credential with arguments.`,
      );
    }
    const allowed = read("AZURE_ADDITIONALLY_ALLOWED_TENANTS")
      ?.split(";")
      .map((tenant) => tenant.trim())
      .filter((tenant) => tenant !== "");
    const authorityHost = read("AZURE_AUTHORITY_HOST");
    return new ClientSecretCredential(
      tenantId,
      clientId,
      clientSecret as string | Observable<string>,
      {
        ...(authorityHost !== undefined ? { authorityHost } : {}),
        ...(allowed !== undefined ? { additionallyAllowedTenants: allowed } : {}),
        ...options,
      },
    );
  }

  /**
   * Gets an access token for `scopes`: a fresh cached token at once, otherwise one shared
   * request per key.
   *
   * Process lifetime: while this call waits for a token that is not there yet, the Node
   * process stays alive through every retry until it settles, so a script whose last line
   * is `await credential.getToken(scope)` ends with its token or the typed error, never
   * silently. A background refresh never keeps the process alive.
   *
   * @param scopes - one scope or several, such as `"https://storage.azure.com/.default"`
   * @param options - `tenantId`, `claims`, `enableCae`, `abortSignal`,
   *   `requestOptions.timeout` (ms this call waits at most)
   * @returns `{ token, expiresOnTimestamp, refreshAfterTimestamp, tokenType: "Bearer" }`
   * @example
   * ```ts
   * const token = await credential.getToken("https://vault.azure.net/.default", {
   *   abortSignal: AbortSignal.timeout(5_000),
   * });
   * ```
   */
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    return this.#engine.getToken(scopes, options);
  }

  /**
   * The health of every live key: until when its token is usable, when its refresh is due,
   * whether one is in flight, how many attempts failed in a row and the last failure, and
   * whether the token is served stale; and whether the token store answers. A snapshot: no
   * request, no timer. A key the engine forgot (idle, nothing held) is not listed.
   *
   * @example
   * ```ts
   * for (const key of credential.status().keys) {
   *   if (key.consecutiveFailures > 0 && key.usableUntil !== undefined) {
   *     const minutes = Math.round((key.usableUntil - Date.now()) / 60_000);
   *     console.warn(`${key.scopes[0]}: usable ${minutes} more min, refresh failed ${key.consecutiveFailures} times (${key.lastFailure?.aadstsCodes.map((c) => `AADSTS${c}`).join(",")})`);
   *   }
   * }
   * ```
   */
  status(): CredentialStatus {
    return this.#engine.status();
  }

  /**
   * A stream of always-fresh tokens for `scopes`: the current usable token on subscribe,
   * then every refreshed one; completes when the credential closes; errors with a typed
   * error only when no usable token can be had. The last unsubscriber stops the refresh.
   *
   * Process lifetime: a subscriber that has had no token yet keeps the Node process alive
   * until its first token or error (so `await firstValueFrom(token$)` in a script gets its
   * answer); after that, refreshes never keep it alive: hold the process with your own work.
   *
   * @example
   * ```ts
   * const subscription = credential
   *   .token$("https://storage.azure.com/.default", { enableCae: true })
   *   .subscribe((token) => connection.reauthenticate(token.token));
   * ```
   */
  token$(scopes: string | string[], options: TokenStreamOptions = {}): Observable<AccessToken> {
    return this.#engine.token$(scopes, options);
  }

  /**
   * Completes every stream, cancels in-flight requests and forgets tokens; later calls
   * reject with `CredentialUnavailableError`. Idempotent.
   *
   * @example
   * ```ts
   * await credential.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#engine.close();
    } finally {
      this.#acquirer.close();
      this.#secrets.close();
      await this.#ownedStore?.then((store) => store.close()).catch(() => undefined);
    }
  }

  /**
   * `await using credential = new ClientSecretCredential(...)` closes it at scope end.
   *
   * @example
   * ```ts
   * await using credential = new ClientSecretCredential(tenantId, clientId, secret);
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** What `JSON.stringify` shows: tenant, client id and authority only. */
  toJSON(): { tenantId: string; clientId: string; authorityHost: string } {
    return { tenantId: this.tenantId, clientId: this.clientId, authorityHost: this.authorityHost };
  }

  /** What `util.inspect` and `console.log` show: tenant, client id and authority only. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ClientSecretCredential { tenantId: ${JSON.stringify(this.tenantId)}, clientId: ${JSON.stringify(this.clientId)}, authorityHost: ${JSON.stringify(this.authorityHost)} }`;
  }
}
