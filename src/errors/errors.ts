/**
 * The typed errors of rx-identity.
 *
 * One base class with a literal `code`, a subclass per failure, and a discriminated union
 * ({@link RxIdentityErrorUnion}) so `switch (err.code)` is exhaustive (the `jose` pattern).
 * Each class keeps the `name` that `@azure/identity` uses, so code that checks
 * `err.name === "AuthenticationError"` keeps working when it switches to this library.
 *
 * Guards check a brand property plus `name` rather than `instanceof`, so they work across
 * duplicated copies of this package (the `ky` pattern).
 *
 * No message or enumerable property of these errors ever holds a client secret or a token;
 * the raw HTTP payload, when kept, is non-enumerable (the `oauth4webapi` pattern).
 */

const brand = Symbol.for("rx-identity.error");

/** Every code an rx-identity error can carry. */
export type RxIdentityErrorCode =
  | "ERR_AUTHENTICATION"
  | "ERR_CREDENTIAL_UNAVAILABLE"
  | "ERR_CLAIMS_CHALLENGE"
  | "ERR_ABORTED"
  | "ERR_INVALID_ARGUMENT";

/**
 * Base class of every error this library throws or emits.
 *
 * @example
 * ```ts
 * try { await credential.getToken(scope); }
 * catch (err) {
 *   if (isRxIdentityError(err)) console.error(err.code, err.message);
 * }
 * ```
 */
export abstract class RxIdentityError extends Error {
  /** A stable, literal code for `switch` statements. */
  abstract readonly code: RxIdentityErrorCode;
  declare readonly [brand]: true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, brand, { value: true, enumerable: false });
  }
}

/** The parsed body of an Entra ID error response, as `@azure/identity` exposes it. */
export interface ErrorResponse {
  /** OAuth error, such as `invalid_client` or `temporarily_unavailable`. */
  readonly error: string;
  /** The service's description (it usually starts with an `AADSTS` code). */
  readonly errorDescription: string;
  /** AADSTS error codes, such as `[7000215]`. */
  readonly errorCodes?: readonly number[];
  /** Server timestamp of the failure, when the service gave one. */
  readonly timestamp?: string;
  /** The service's trace id: quote it to Microsoft support. */
  readonly traceId?: string;
  /** The correlation id of the request. */
  readonly correlationId?: string;
}

/** Options of {@link AuthenticationError}. */
export interface AuthenticationErrorOptions {
  /** Whether trying again later may succeed (network errors, timeouts, 408, 429, 5xx). */
  readonly transient: boolean;
  /** A server-given delay before trying again (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

/**
 * The token service refused or failed a request: it carries the HTTP status, the OAuth
 * `error`, the description, AADSTS codes, and the correlation and trace ids.
 *
 * `statusCode` is 0 when no HTTP response arrived (a network error or a timeout).
 *
 * @example
 * ```ts
 * if (isAuthenticationError(err) && err.errorResponse.errorCodes?.includes(7000215)) {
 *   console.error("The client secret is wrong: rotate it in the app registration.");
 * }
 * ```
 */
export class AuthenticationError extends RxIdentityError {
  override readonly name = "AuthenticationError";
  readonly code = "ERR_AUTHENTICATION" as const;
  /** HTTP status of the failed response, or 0 when none arrived. */
  readonly statusCode: number;
  readonly errorResponse: ErrorResponse;
  /** Whether trying again later may succeed. */
  readonly transient: boolean;
  /** A server-given delay before trying again, in milliseconds, when the service sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    statusCode: number,
    errorResponse: ErrorResponse,
    options: AuthenticationErrorOptions,
    message?: string,
  ) {
    super(
      message ??
        `${errorResponse.error}(status code ${statusCode}).\nMore details:\n${errorResponse.errorDescription}`,
      { cause: options.cause },
    );
    this.statusCode = statusCode;
    this.errorResponse = errorResponse;
    this.transient = options.transient;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The credential cannot be used as configured: bad configuration, a tenant that is not
 * allowed, or a credential that was closed. Azure SDK chains move on to the next credential
 * when they see this name.
 *
 * @example
 * ```ts
 * await credential.close();
 * await credential.getToken(scope); // rejects with CredentialUnavailableError
 * ```
 */
export class CredentialUnavailableError extends RxIdentityError {
  override readonly name = "CredentialUnavailableError";
  readonly code = "ERR_CREDENTIAL_UNAVAILABLE" as const;
}

/**
 * A resource demanded claims (a CAE or conditional-access challenge) that could not be
 * satisfied. `claims` holds the decoded claims JSON to request.
 *
 * @example
 * ```ts
 * if (isClaimsChallengeError(err)) await credential.getToken(scope, { claims: err.claims });
 * ```
 */
export class ClaimsChallengeError extends RxIdentityError {
  override readonly name = "ClaimsChallengeError";
  readonly code = "ERR_CLAIMS_CHALLENGE" as const;
  readonly claims: string;

  constructor(message: string, claims: string, options?: { cause?: unknown }) {
    super(message, options);
    this.claims = claims;
  }
}

/**
 * The caller's `abortSignal` fired before a token arrived. Others waiting for the same
 * token are not affected.
 *
 * @example
 * ```ts
 * await credential.getToken(scope, { abortSignal: AbortSignal.timeout(2_000) });
 * ```
 */
export class AbortError extends RxIdentityError {
  override readonly name = "AbortError";
  readonly code = "ERR_ABORTED" as const;
}

/**
 * An argument was malformed (a scope with whitespace, claims that are not a JSON object, a
 * negative option). Thrown before any network call, naming the argument and what to do.
 *
 * @example
 * ```ts
 * await credential.getToken("bad scope"); // rejects with InvalidArgumentError
 * ```
 */
export class InvalidArgumentError extends RxIdentityError {
  override readonly name = "InvalidArgumentError";
  readonly code = "ERR_INVALID_ARGUMENT" as const;
}

/** Every concrete error of rx-identity, discriminated by `code`. */
export type RxIdentityErrorUnion =
  | AuthenticationError
  | CredentialUnavailableError
  | ClaimsChallengeError
  | AbortError
  | InvalidArgumentError;

function hasBrand(value: unknown): value is RxIdentityErrorUnion {
  return (
    typeof value === "object" && value !== null && (value as { [brand]?: unknown })[brand] === true
  );
}

/** Whether `value` is any rx-identity error (works across duplicated package copies). */
export function isRxIdentityError(value: unknown): value is RxIdentityErrorUnion {
  return hasBrand(value);
}

/** Whether `value` is an {@link AuthenticationError}. */
export function isAuthenticationError(value: unknown): value is AuthenticationError {
  return hasBrand(value) && value.name === "AuthenticationError";
}

/** Whether `value` is a {@link CredentialUnavailableError}. */
export function isCredentialUnavailableError(value: unknown): value is CredentialUnavailableError {
  return hasBrand(value) && value.name === "CredentialUnavailableError";
}

/** Whether `value` is a {@link ClaimsChallengeError}. */
export function isClaimsChallengeError(value: unknown): value is ClaimsChallengeError {
  return hasBrand(value) && value.name === "ClaimsChallengeError";
}

/** Whether `value` is an {@link AbortError}. */
export function isAbortError(value: unknown): value is AbortError {
  return hasBrand(value) && value.name === "AbortError";
}

/** Whether `value` is an {@link InvalidArgumentError}. */
export function isInvalidArgumentError(value: unknown): value is InvalidArgumentError {
  return hasBrand(value) && value.name === "InvalidArgumentError";
}
