import { randomUUID } from "node:crypto";
import {
  ConfidentialClientApplication,
  type AuthenticationResult,
  type Configuration,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from "@azure/msal-node";
import type { SchedulerLike } from "rxjs";
import { AbortError, AuthenticationError } from "../errors/index.js";
import type { AcquiredToken } from "../streams/types.js";
import type { CredentialKey } from "./key.js";
import { msalLogLevel, msalLoggerCallback } from "./logger.js";
import { mapError, type RawTokenResponse } from "./map-error.js";
import { secretForms } from "./secret-forms.js";
import { createNetworkClient, type NetworkClient } from "./network-client.js";
import { withSecretFailover } from "./secret-failover.js";
import type { SecretSnapshot, SecretSource } from "./secret-source.js";

/**
 * The one MSAL acquisition: `ConfidentialClientApplication.acquireTokenByClientCredential`
 * with MSAL's cache bypassed, through a network client that honours an `AbortSignal` and
 * records the token endpoint's raw response (status, headers, Entra error body), which MSAL's
 * errors do not carry (`ServerError` drops `Retry-After`, the trace id and the timestamp).
 */

/**
 * Time limit of one HTTP request to the authority, in milliseconds. A hung request then
 * fails as a transient network error and the engine's retry policy takes over.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Hosts where MSAL's instance discovery works as designed. For any other host (the local
 * emulator, a private cloud) the host is listed in `knownAuthorities`, or MSAL would ask
 * login.microsoftonline.com about it (DESIGN.md, facts).
 */
const MICROSOFT_AUTHORITY_HOSTS = new Set([
  "login.microsoftonline.com",
  "login.microsoftonline.us",
  "login.chinacloudapi.cn",
  "login.microsoftonline.de",
  "login.windows.net",
  "login.microsoft.com",
  "sts.windows.net",
]);

/** Options of {@link createAcquirer}. */
export interface AcquirerOptions {
  readonly clientId: string;
  /** The current client secret (a fixed one, or the latest of an Observable). */
  readonly secrets: SecretSource;
  /** Normalised authority host, without a trailing `/`. */
  readonly authorityHost: string;
  /** The credential's (validated) tenant, for MSAL's configuration authority. */
  readonly defaultTenant: string;
  /** @default false */
  readonly disableInstanceDiscovery?: boolean | undefined;
  /** @default undefined (Node's usual roots only) */
  readonly ca?: string | readonly string[] | undefined;
  /** The clock the returned timestamps are on. */
  readonly scheduler: SchedulerLike;
  /** @default {@link REQUEST_TIMEOUT_MS} */
  readonly timeoutMs?: number | undefined;
}

/** The acquisition function of one credential, and how to release its sockets. */
export interface Acquirer {
  readonly acquire: (key: CredentialKey, signal: AbortSignal) => Promise<AcquiredToken>;
  /** Destroys the network client's sockets. */
  close(): void;
}

/**
 * `knownAuthorities` for MSAL: the authority's host (with its port) when instance discovery
 * is disabled or the host is not a Microsoft cloud host, so MSAL trusts the host's own
 * OpenID configuration instead of asking login.microsoftonline.com.
 *
 * @example
 * ```ts
 * knownAuthoritiesFor("https://127.0.0.1:8443", false); // ["127.0.0.1:8443"]
 * knownAuthoritiesFor("https://login.microsoftonline.com", false); // []
 * ```
 */
export function knownAuthoritiesFor(
  authorityHost: string,
  disableInstanceDiscovery: boolean,
): string[] {
  const url = new URL(authorityHost);
  if (disableInstanceDiscovery || !MICROSOFT_AUTHORITY_HOSTS.has(url.hostname)) {
    return [url.host];
  }
  return [];
}

/**
 * The longest token lifetime taken from a response, in seconds: 24 hours, the most Entra ID
 * issues (CAE tokens). A longer `expires_in` is clamped to it, so a wild value (`1e300`)
 * cannot make a token that is never refreshed, a date `toISOString` throws on, or a Redis
 * `PX` out of range.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 86_400;

/** The shortest lifetime accepted, in seconds: a shorter one cannot be used, let alone cached. */
export const MIN_TOKEN_LIFETIME_SECONDS = 1;

/**
 * A field of seconds in a token response: a JSON number, or a string of decimal digits (with
 * an optional fraction). Only decimal: `Number("0x10")` is 16, but MSAL's
 * `parseInt(expires_in, 10)` (msal-common `ResponseHandler.generateCacheRecord`) reads 0,
 * and `"1e3"` or `" 12 "` are no lifetime Entra ID sends. MSAL parses the field for its own
 * cache (which this library bypasses): the lifetime we use is read here, from the raw body.
 */
function readSeconds(body: unknown, field: string): number | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const value = (body as Record<string, unknown>)[field];
  const seconds =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\d+(\.\d+)?$/.test(value)
        ? Number(value)
        : Number.NaN;
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** `expires_in` as it may be used, or why it may not. */
function readLifetime(body: unknown): { readonly seconds: number } | { readonly problem: string } {
  const raw = (body as Record<string, unknown> | undefined)?.["expires_in"];
  const seconds = readSeconds(body, "expires_in");
  if (raw === undefined) return { problem: "held no expires_in" };
  if (seconds === undefined) {
    return {
      problem: `held an expires_in that is not a decimal number of seconds (${describeValue(raw)})`,
    };
  }
  if (seconds < MIN_TOKEN_LIFETIME_SECONDS) {
    return {
      problem: `held an expires_in of ${seconds} s, under the ${MIN_TOKEN_LIFETIME_SECONDS} s a token must live to be used`,
    };
  }
  return { seconds: Math.min(seconds, MAX_TOKEN_LIFETIME_SECONDS) };
}

/** A short, safe rendering of a malformed value (never a token: this is a number field). */
function describeValue(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : typeof value;
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function invalidResponse(description: string, correlationId: string): AuthenticationError {
  return new AuthenticationError(
    200,
    { error: "invalid_response", errorDescription: description, correlationId },
    { transient: false },
  );
}

/**
 * MSAL stores a 429/5xx (or any `Retry-After`) failure and re-throws it with no request for
 * `Retry-After` seconds, or 60 s without one (msal-common `network/ThrottlingUtils.ts`:
 * `postProcess` stores a `ThrottlingEntity` under a `throttling.`-prefixed key; `preProcess`
 * re-throws it as a `ServerError`). Our retry policy owns delays and must recover as soon
 * as the service does, so after each acquisition we drop those entries, and the access
 * tokens MSAL writes although we never read them (`skipCache`), through the public
 * `TokenCache.getKVStore()` (a live view of MSAL's in-memory cache). Only authority
 * metadata is kept, so MSAL does not fetch the OpenID configuration again.
 */
function clearMsalCache(app: ConfidentialClientApplication): void {
  const store = app.getTokenCache().getKVStore() as Record<string, unknown>;
  for (const key of Object.keys(store)) {
    if (!key.includes("authority-metadata")) delete store[key];
  }
}

/**
 * Creates the acquisition function of one credential: two MSAL applications per client
 * secret (CAE with client capability `cp1`, and non-CAE) so CAE and non-CAE tokens never
 * mix. MSAL's `ConfidentialClientApplication` holds its secret for good, so a rotation makes
 * new applications for the new secret; requests in flight keep the ones they started with.
 *
 * @example
 * ```ts
 * const secrets = createSecretSource(clientSecret, { scheduler });
 * const acquirer = createAcquirer({ clientId, secrets, authorityHost, defaultTenant, scheduler });
 * const token = await acquirer.acquire(deriveKey(tenant, [scope], undefined, false), signal);
 * acquirer.close();
 * ```
 */
export function createAcquirer(options: AcquirerOptions): Acquirer {
  const { scheduler, authorityHost, secrets } = options;
  const networkClient: NetworkClient = createNetworkClient({
    ca: options.ca,
    timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
    // The request time limit runs on the credential's clock, like every other timer.
    scheduler,
  });
  const responses = new Map<string, RawTokenResponse>();

  const record = (
    correlationId: string | undefined,
    status: number,
    headers: Record<string, string> | undefined,
    body: unknown,
  ): void => {
    if (correlationId === undefined || correlationId === "") return;
    const lowered: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers ?? {})) lowered[name.toLowerCase()] = value;
    responses.set(correlationId, { status, headers: lowered, body });
  };

  // Token requests are POSTs: record their responses by correlation id (MSAL passes it in
  // the request options), so the error mapper sees what MSAL's errors drop.
  const recordingClient: INetworkModule = {
    sendGetRequestAsync: <T>(
      url: string,
      requestOptions?: NetworkRequestOptions,
      timeout?: number,
    ) => networkClient.sendGetRequestAsync<T>(url, requestOptions, timeout),
    sendPostRequestAsync: async <T>(
      url: string,
      requestOptions?: NetworkRequestOptions,
    ): Promise<NetworkResponse<T>> => {
      try {
        const response = await networkClient.sendPostRequestAsync<T>(url, requestOptions);
        record(requestOptions?.correlationId, response.status, response.headers, response.body);
        return response;
      } catch (error) {
        // The network client's `AuthError` for a response whose body could not be parsed (a
        // gateway's HTML 503) carries its status and headers: keep them for the classifier.
        const status = (error as { httpStatus?: unknown }).httpStatus;
        if (typeof status === "number") {
          const headers = (error as { responseHeaders?: Record<string, string> }).responseHeaders;
          record(requestOptions?.correlationId, status, headers, undefined);
        }
        throw error;
      }
    },
  };

  const knownAuthorities = knownAuthoritiesFor(
    authorityHost,
    options.disableInstanceDiscovery ?? false,
  );
  // The applications of the newest secret only: a replaced secret's are dropped with it.
  let appsVersion = 0;
  const apps = new Map<boolean, ConfidentialClientApplication>();
  const appFor = (secret: SecretSnapshot, enableCae: boolean): ConfidentialClientApplication => {
    if (secret.version > appsVersion) {
      apps.clear();
      appsVersion = secret.version;
    }
    let app = secret.version === appsVersion ? apps.get(enableCae) : undefined;
    if (app === undefined) {
      const configuration: Configuration = {
        auth: {
          clientId: options.clientId,
          clientSecret: secret.reveal(),
          authority: `${authorityHost}/${options.defaultTenant}`,
          knownAuthorities,
          ...(enableCae ? { clientCapabilities: ["cp1"] } : {}),
        },
        system: {
          networkClient: recordingClient,
          loggerOptions: {
            loggerCallback: msalLoggerCallback,
            piiLoggingEnabled: false,
            logLevel: msalLogLevel(),
          },
        },
      };
      app = new ConfidentialClientApplication(configuration);
      if (secret.version === appsVersion) apps.set(enableCae, app);
    }
    return app;
  };

  const attempt = async (
    secret: SecretSnapshot,
    key: CredentialKey,
    signal: AbortSignal,
  ): Promise<AcquiredToken> => {
    if (signal.aborted) throw new AbortError("The token request was aborted before it started.");
    const correlationId = randomUUID();
    const startedAt = scheduler.now();
    const app = appFor(secret, key.enableCae);
    let result: AuthenticationResult | null;
    let raw: RawTokenResponse | undefined;
    try {
      result = await networkClient.run({ correlationId, signal }, () =>
        app.acquireTokenByClientCredential({
          scopes: [...key.scopes],
          authority: `${authorityHost}/${key.tenant}`,
          skipCache: true,
          correlationId,
          ...(key.claims !== undefined ? { claims: key.claims } : {}),
        }),
      );
    } catch (error) {
      if (signal.aborted) {
        throw new AbortError("The token request was aborted.", { cause: signal.reason });
      }
      throw mapError(error, {
        response: responses.get(correlationId),
        correlationId,
        // The secret sent, and the newest (which a proxy might echo as well), in every form
        // an echoing server can return it (URL-encoded, HTTP Basic).
        secrets: [secret.reveal(), secrets.current()?.reveal() ?? ""].flatMap((value) =>
          secretForms(value, options.clientId),
        ),
      });
    } finally {
      raw = responses.get(correlationId);
      responses.delete(correlationId);
      clearMsalCache(app);
    }
    if (result === null || result.accessToken === "") {
      throw invalidResponse("The token response held no access_token.", correlationId);
    }
    const lifetime = readLifetime(raw?.body);
    if ("problem" in lifetime) {
      throw invalidResponse(
        `The token response ${lifetime.problem}: the token's lifetime is unknown or unusable, so it cannot be cached or refreshed safely.`,
        correlationId,
      );
    }
    // Timestamps are on the scheduler's clock, counted from the request's start as MSAL
    // does, so a virtual-time test sees the emulator's lifetimes on its own clock.
    const expiresOnTimestamp = startedAt + lifetime.seconds * 1000;
    const arrivedAt = scheduler.now();
    if (expiresOnTimestamp <= arrivedAt) {
      throw invalidResponse(
        `The token response held an expires_in of ${lifetime.seconds} s, but the request took ${arrivedAt - startedAt} ms: the token expired before it arrived.`,
        correlationId,
      );
    }
    // A refresh hint is optional: one that is malformed, not positive or past the expiry is
    // dropped, and the refresh policy's own rule applies.
    const refreshIn = readSeconds(raw?.body, "refresh_in");
    const refreshAfterTimestamp =
      refreshIn !== undefined && refreshIn > 0 ? startedAt + refreshIn * 1000 : undefined;
    return {
      token: result.accessToken,
      expiresOnTimestamp,
      refreshAfterTimestamp:
        refreshAfterTimestamp !== undefined && refreshAfterTimestamp < expiresOnTimestamp
          ? refreshAfterTimestamp
          : undefined,
    } satisfies AcquiredToken;
  };

  const acquire = withSecretFailover({ secrets, attempt });

  return {
    acquire,
    close: () => {
      networkClient.close();
      apps.clear();
      responses.clear();
    },
  };
}
