/**
 * How `reactiveCredential` classifies what a wrapped `TokenCredential` throws. The errors
 * themselves pass through untouched (the same objects, so `err.name`, `err.message`,
 * `instanceof` against `@azure/identity`'s classes and `statusCode` keep working); only
 * whether to try again is decided here, from what Azure Identity's errors carry: their
 * `name` (no `instanceof`: the wrapped credential may come from any copy of any library) and
 * the HTTP `statusCode` of `AuthenticationError` and core-rest-pipeline's `RestError`.
 */
import { isRxIdentityError } from "../errors/index.js";
import type { FailureClass } from "../streams/index.js";
import { classify, isTransientStatus, parseRetryAfter } from "./map-error.js";

/**
 * Error names that say "this credential cannot work here as configured": retrying cannot
 * help. `CredentialUnavailableError` is what `ManagedIdentityCredential` throws off Azure and
 * what `DefaultAzureCredential` throws when no credential in its chain works;
 * `AuthenticationRequiredError` needs a user's interaction.
 */
const PERMANENT_NAMES = new Set([
  "CredentialUnavailableError",
  "AuthenticationRequiredError",
  "AggregateAuthenticationError",
  "AbortError",
]);

/**
 * Node and undici error codes of a request that failed before any response: the network
 * or the endpoint may come back by itself. (`ENOTFOUND` is not here: a name that does not
 * resolve is configuration.)
 */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** The HTTP status an Azure SDK error carries (`AuthenticationError`, `RestError`), if any. */
function statusOf(error: Error): number | undefined {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === "number" && Number.isInteger(status) && status > 0 ? status : undefined;
}

/** `Retry-After` of the response a `RestError` carries (`response.headers.get`), if any. */
function retryAfterOf(error: Error, now: number): number | undefined {
  const headers = (error as { response?: { headers?: { get?: unknown } } }).response?.headers;
  if (typeof headers?.get !== "function") return undefined;
  const value: unknown = (headers.get as (name: string) => unknown).call(headers, "retry-after");
  return typeof value === "string" ? parseRetryAfter(value, now) : undefined;
}

/** Whether `error` or one of its causes is a network failure before any response. */
function isNetworkFailure(error: Error): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    // undici's fetch rejects with `TypeError: fetch failed` and the socket error as cause.
    if (current instanceof TypeError && current.message === "fetch failed") return true;
    current = current.cause;
  }
  return false;
}

/**
 * Whether a failure of a wrapped credential is worth retrying.
 *
 * - rx-identity's own errors (a wrapped rx-identity credential): as they say;
 * - `CredentialUnavailableError` (and `AuthenticationRequiredError`, aborts): permanent;
 * - an error with an HTTP `statusCode` (`AuthenticationError`, `RestError`): transient for
 *   408, 429 and 5xx, honouring a `Retry-After` the response carries; permanent otherwise;
 * - a network failure before any response (`ECONNRESET`, `fetch failed`, ...): transient;
 * - anything else: permanent (a bug or a configuration problem does not heal by itself).
 *
 * @param error - what the wrapped credential's `getToken` threw
 * @param now - wall-clock now in epoch ms, for an HTTP-date `Retry-After`
 * @default now Date.now
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify: (error) => classifySourceFailure(error) });
 * ```
 */
export function classifySourceFailure(error: unknown, now: () => number = Date.now): FailureClass {
  if (isRxIdentityError(error)) return classify(error);
  if (!(error instanceof Error)) return { transient: false };
  if (PERMANENT_NAMES.has(error.name)) return { transient: false };
  const status = statusOf(error);
  if (status !== undefined) {
    return isTransientStatus(status)
      ? { transient: true, retryAfterMs: retryAfterOf(error, now()) }
      : { transient: false };
  }
  return { transient: isNetworkFailure(error) };
}
