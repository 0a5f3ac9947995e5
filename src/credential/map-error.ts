import { AuthError, ServerError } from "@azure/msal-node";
import {
  AbortError,
  AuthenticationError,
  CredentialUnavailableError,
  isRxIdentityError,
  type ErrorResponse,
  type RxIdentityErrorUnion,
} from "../errors/index.js";
import type { FailureClass } from "../streams/types.js";

/**
 * The one error mapper: the only place in rx-identity that does `instanceof` against MSAL's
 * classes (the `openid-client` `errorHandler` pattern). It turns MSAL's `ServerError` /
 * `AuthError`, network `TypeError`s and aborts into {@link AuthenticationError} or
 * {@link AbortError}, and {@link classify} tells the engine which failures are transient.
 */

/** The raw token-endpoint response of the failed request, when one arrived. */
export interface RawTokenResponse {
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body, or the body text when it was not JSON. */
  readonly body: unknown;
}

/** Context the acquirer knows about a failure and MSAL's error does not carry. */
export interface MapErrorContext {
  /** The token endpoint's response, recorded by the acquirer's network module. */
  readonly response?: RawTokenResponse | undefined;
  /** The correlation id sent with the request. */
  readonly correlationId?: string | undefined;
  /** Strings that must never appear in a message (the client secret). */
  readonly secrets?: readonly string[] | undefined;
  /**
   * Wall-clock now, to turn an HTTP-date `Retry-After` into a delay.
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * AADSTS codes that are permanent whatever their HTTP status: trying again with the same
 * configuration cannot succeed.
 * 7000215 wrong secret, 7000222 expired secret, 700016 unknown application,
 * 90002 unknown tenant, 70011 invalid scope, 700024 client assertion invalid,
 * 500011 resource principal not found in the tenant.
 */
const PERMANENT_AADSTS = new Set([7000215, 7000222, 700016, 90002, 70011, 700024, 500011]);

/** OAuth `error` values that are permanent. */
const PERMANENT_ERRORS = new Set([
  "invalid_client",
  "unauthorized_client",
  "invalid_scope",
  "invalid_request",
  "invalid_grant",
  "unsupported_grant_type",
  "access_denied",
]);

/**
 * Parses a `Retry-After` value (delta-seconds or an HTTP-date) into milliseconds. Only a
 * delay in the future is a hint: `0`, a negative number and an HTTP-date already past (the
 * client's and the server's clocks apart) give `undefined`, so the retry policy keeps its own
 * backoff instead of retrying at once (issue #18: `Retry-After: 0` made ~8,000 requests in
 * 20 s).
 *
 * @param value - the header value
 * @param now - wall-clock now in epoch ms
 * @returns the delay, positive, or `undefined` when absent, unparseable, zero or past
 * @example
 * ```ts
 * parseRetryAfter("2", Date.now()); // 2000
 * parseRetryAfter("0", Date.now()); // undefined
 * parseRetryAfter("Wed, 21 Oct 2037 07:28:00 GMT", Date.now()); // ms until then
 * ```
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  // A number is delta-seconds, never a date: `Date.parse("-1")` reads a year.
  if (/^[+-]?\d+(\.\d+)?$/.test(trimmed)) {
    const ms = Math.round(Number(trimmed) * 1000);
    return ms > 0 ? ms : undefined;
  }
  const date = Date.parse(trimmed);
  if (Number.isNaN(date) || date <= now) return undefined;
  return date - now;
}

/** Whether an HTTP status means "try again later". */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status < 600);
}

function scrub(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length > 0) result = result.split(secret).join("[REDACTED]");
  }
  return result;
}

/** `error` itself, or when any of its own string properties holds a secret, a scrubbed copy. */
function scrubCause(error: unknown, secrets: readonly string[]): unknown {
  if (!(error instanceof Error) || secrets.length === 0) return error;
  const names = Object.getOwnPropertyNames(error);
  const holds = names.some((name) => {
    const value: unknown = (error as unknown as Record<string, unknown>)[name];
    return (
      typeof value === "string" &&
      secrets.some((secret) => secret.length > 0 && value.includes(secret))
    );
  });
  if (!holds) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Record<string, unknown>;
  for (const name of names) {
    const value: unknown = (error as unknown as Record<string, unknown>)[name];
    const descriptor = Object.getOwnPropertyDescriptor(error, name) as PropertyDescriptor;
    Object.defineProperty(copy, name, {
      ...descriptor,
      ...("value" in descriptor
        ? { value: typeof value === "string" ? scrub(value, secrets) : value }
        : {}),
    });
  }
  return copy;
}

function stringField(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Builds an {@link ErrorResponse} from an Entra error body, as Azure Identity does. */
function errorResponseFromBody(
  body: unknown,
  status: number,
  fallback: { error: string; description: string; correlationId?: string | undefined },
): ErrorResponse {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const record = body as Record<string, unknown>;
    const error = stringField(record, "error");
    if (error !== undefined) {
      const codes = Array.isArray(record["error_codes"])
        ? record["error_codes"].filter((code): code is number => typeof code === "number")
        : undefined;
      const description = stringField(record, "error_description") ?? fallback.description;
      const fromDescription = /AADSTS(\d+)/.exec(description);
      const errorCodes =
        codes !== undefined && codes.length > 0
          ? codes
          : fromDescription?.[1] !== undefined
            ? [Number(fromDescription[1])]
            : undefined;
      return withOptional({
        error,
        errorDescription: description,
        errorCodes,
        timestamp: stringField(record, "timestamp"),
        traceId: stringField(record, "trace_id"),
        correlationId: stringField(record, "correlation_id") ?? fallback.correlationId,
      });
    }
  }
  if (typeof body === "string" && body.length > 0) {
    const excerpt = body.length > 512 ? `${body.slice(0, 512)}…` : body;
    return withOptional({
      error: status === 400 ? "invalid_request" : fallback.error,
      errorDescription: `${fallback.description} Response body:\n\n${excerpt}`,
      correlationId: fallback.correlationId,
    });
  }
  return withOptional({
    error: fallback.error,
    errorDescription: fallback.description,
    correlationId: fallback.correlationId,
  });
}

/** Drops `undefined` fields, for `exactOptionalPropertyTypes`. */
function withOptional(response: {
  error: string;
  errorDescription: string;
  errorCodes?: readonly number[] | undefined;
  timestamp?: string | undefined;
  traceId?: string | undefined;
  correlationId?: string | undefined;
}): ErrorResponse {
  const result: {
    error: string;
    errorDescription: string;
    errorCodes?: readonly number[];
    timestamp?: string;
    traceId?: string;
    correlationId?: string;
  } = { error: response.error, errorDescription: response.errorDescription };
  if (response.errorCodes !== undefined) result.errorCodes = response.errorCodes;
  if (response.timestamp !== undefined) result.timestamp = response.timestamp;
  if (response.traceId !== undefined) result.traceId = response.traceId;
  if (response.correlationId !== undefined) result.correlationId = response.correlationId;
  return result;
}

function isPermanentResponse(response: ErrorResponse): boolean {
  if (response.errorCodes?.some((code) => PERMANENT_AADSTS.has(code)) === true) return true;
  return PERMANENT_ERRORS.has(response.error);
}

function scrubResponse(response: ErrorResponse, secrets: readonly string[]): ErrorResponse {
  if (secrets.length === 0) return response;
  return { ...response, errorDescription: scrub(response.errorDescription, secrets) };
}

/**
 * Node's TLS verification codes, and what each says about the server's certificate. These
 * are configuration problems (the client does not trust the issuer, the certificate does not
 * name the host, or it is out of date): trying again cannot help, so they fail at once.
 */
const CERTIFICATE_PROBLEMS: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "it is self-signed and not trusted",
  SELF_SIGNED_CERT_IN_CHAIN: "its chain ends in a self-signed certificate that is not trusted",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "it was issued by a certificate authority that is not trusted",
  UNABLE_TO_GET_ISSUER_CERT: "it was issued by a certificate authority that is not trusted",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "it was issued by a certificate authority that is not trusted",
  CERT_UNTRUSTED: "it is not trusted",
  CERT_HAS_EXPIRED: "it has expired",
  CERT_NOT_YET_VALID: "it is not valid yet",
  CERT_REVOKED: "it has been revoked",
  CERT_SIGNATURE_FAILURE: "its signature does not verify",
  ERR_TLS_CERT_ALTNAME_INVALID: "it does not name the host it was served for",
};

const TRUST_REMEDY =
  "Trust the certificate authority that issued it: NODE_EXTRA_CA_CERTS=<PEM file> (read once at process start), the credential's `ca` option, or `--ca-file <PEM file>` on the rx-identity command line (for the local emulator: the CA file it prints).";

/** The first error with a `code` in `error`'s cause chain that `accept` takes. */
function findCause(
  error: unknown,
  accept: (code: string) => boolean,
): (Error & { code: string }) | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && accept(code)) return current as Error & { code: string };
    current = current.cause;
  }
  return undefined;
}

/**
 * A rejected server certificate or an authority host that does not resolve, anywhere in
 * the cause chain (the network client carries the TLS error on the `network_error` of a
 * token POST, and on the `endpoints_resolution_error` of the OpenID configuration GET), as
 * a permanent configuration error naming the problem and the remedy.
 */
function configurationFailure(error: unknown): CredentialUnavailableError | undefined {
  const tls = findCause(error, (code) => code in CERTIFICATE_PROBLEMS);
  if (tls !== undefined) {
    const problem = CERTIFICATE_PROBLEMS[tls.code] as string;
    const remedy =
      tls.code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? "Use a host name the certificate lists (AZURE_AUTHORITY_HOST, the credential's `authorityHost`), or serve a certificate for this one."
        : TRUST_REMEDY;
    return new CredentialUnavailableError(
      `The authority's TLS certificate was rejected: ${problem} (${tls.code}: ${tls.message}). A certificate problem is configuration, so it is not retried. ${remedy}`,
      { cause: error },
    );
  }
  const dns = findCause(error, (code) => code === "ENOTFOUND");
  if (dns !== undefined) {
    const hostname = (dns as { hostname?: unknown }).hostname;
    return new CredentialUnavailableError(
      `The authority host${typeof hostname === "string" ? ` ${hostname}` : ""} does not resolve (ENOTFOUND): check AZURE_AUTHORITY_HOST or the credential's \`authorityHost\` for a typo. Not retried: a name that does not exist does not appear by itself (a temporary DNS failure, EAI_AGAIN, is retried).`,
      { cause: error },
    );
  }
  return undefined;
}

/**
 * Maps any failure of an acquisition to an rx-identity error.
 *
 * - already an rx-identity error: returned as is;
 * - a DOM/Node `AbortError` (the caller's signal): {@link AbortError};
 * - an HTTP response arrived (recorded by the acquirer, or MSAL's `ServerError` status):
 *   {@link AuthenticationError} with that status and the Entra body, transient for 408, 429
 *   and 5xx (and `temporarily_unavailable`), `retryAfterMs` from `Retry-After`;
 * - MSAL `network_error`, `endpoints_resolution_error`, a `TypeError` from `fetch`, a
 *   timeout: transient {@link AuthenticationError} with status 0;
 * - any other MSAL `AuthError` (a malformed response, a configuration MSAL refuses):
 *   permanent {@link AuthenticationError} carrying MSAL's `errorCode` as `error`.
 *
 * @example
 * ```ts
 * try { await app.acquireTokenByClientCredential(request); }
 * catch (err) { throw mapError(err, { correlationId: request.correlationId }); }
 * ```
 */
export function mapError(original: unknown, context: MapErrorContext = {}): RxIdentityErrorUnion {
  if (isRxIdentityError(original)) return original;
  const secrets = context.secrets ?? [];
  // The foreign error becomes our `cause`: a server that echoes the secret in its error
  // description would otherwise leak it through `util.inspect` of the cause chain.
  const error = scrubCause(original, secrets);
  const correlationId = context.correlationId;
  const now = context.now ?? Date.now;

  if (error instanceof Error && error.name === "AbortError" && !(error instanceof AuthError)) {
    return new AbortError("The token request was aborted by the caller.", { cause: error });
  }

  const configuration = configurationFailure(error);
  if (configuration !== undefined) return configuration;

  const response = context.response;
  if (response !== undefined && response.status >= 400) {
    const msalMessage = error instanceof Error ? scrub(error.message, secrets) : "";
    const errorResponse = scrubResponse(
      errorResponseFromBody(response.body, response.status, {
        error: "unknown_error",
        description: msalMessage || `The token endpoint answered HTTP ${response.status}.`,
        correlationId,
      }),
      secrets,
    );
    const transient =
      isTransientStatus(response.status) ||
      (errorResponse.error === "temporarily_unavailable" && !isPermanentResponse(errorResponse));
    return new AuthenticationError(response.status, errorResponse, {
      transient,
      retryAfterMs: parseRetryAfter(response.headers["retry-after"], now()),
      cause: error,
    });
  }

  if (error instanceof ServerError) {
    const status = error.status ?? 0;
    const errorResponse = scrubResponse(
      withOptional({
        error: error.errorCode,
        errorDescription: error.errorMessage,
        errorCodes: error.errorNo !== undefined ? [Number(error.errorNo)] : undefined,
        correlationId: error.correlationId || correlationId,
      }),
      secrets,
    );
    return new AuthenticationError(status, errorResponse, {
      transient: isTransientStatus(status) || error.errorCode === "temporarily_unavailable",
      cause: error,
    });
  }

  if (error instanceof AuthError) {
    const transient =
      error.errorCode === "network_error" || error.errorCode === "endpoints_resolution_error";
    // The network client hands back why the OpenID configuration GET failed, when it did.
    const reason = error.cause instanceof Error ? ` (${scrub(error.cause.message, secrets)})` : "";
    const hint =
      error.errorCode === "endpoints_resolution_error"
        ? ` MSAL could not read the authority's OpenID configuration${reason}: check that the authority host is reachable and trusted (see the credential's \`ca\` option), and instance discovery (\`disableInstanceDiscovery\`).`
        : "";
    return new AuthenticationError(
      response?.status ?? 0,
      withOptional({
        error: error.errorCode,
        errorDescription: `${scrub(error.errorMessage || error.message, secrets)}${hint}`,
        correlationId: error.correlationId || correlationId,
      }),
      { transient, cause: error },
    );
  }

  if (error instanceof TypeError) {
    return new AuthenticationError(
      0,
      withOptional({
        error: "network_error",
        errorDescription: `The token request failed before a response arrived: ${scrub(error.message, secrets)}`,
        correlationId,
      }),
      { transient: true, cause: error },
    );
  }

  const message = error instanceof Error ? error.message : String(error);
  return new AuthenticationError(
    0,
    withOptional({
      error: "unknown_error",
      errorDescription: scrub(message, secrets),
      correlationId,
    }),
    { transient: false, cause: error },
  );
}

/**
 * The classifier the engine takes: transient failures are retried with backoff, permanent
 * ones are not hammered.
 *
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify });
 * ```
 */
export function classify(error: unknown): FailureClass {
  const mapped = mapError(error);
  if (mapped.code === "ERR_AUTHENTICATION") {
    return { transient: mapped.transient, retryAfterMs: mapped.retryAfterMs };
  }
  return { transient: false };
}
