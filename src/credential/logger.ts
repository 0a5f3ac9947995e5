import { createClientLogger, getLogLevel, type AzureLogger } from "@azure/logger";
import { LogLevel } from "@azure/msal-node";
import type { CredentialEvent, CredentialEventKey, FailureSummary } from "./events.js";

/**
 * Logging through `@azure/logger`, the Azure SDK convention: enable it with
 * `AZURE_LOG_LEVEL=info` (or `verbose`) or `setLogLevel`. Lines go to the `rx-identity`
 * namespace. Tokens appear only redacted ({@link redactToken}); the client secret never
 * appears: it is not passed to any function of this file.
 */

/**
 * The credential's logger (`rx-identity` namespace).
 *
 * @example
 * ```ts
 * import { setLogLevel } from "@azure/logger";
 * setLogLevel("info"); // rx-identity:info lines appear on stderr
 * ```
 */
export const logger: AzureLogger = createClientLogger("rx-identity");

/**
 * A token as it may appear in a log line: its first 6 characters and its length.
 *
 * @example
 * ```ts
 * redactToken("eyJ0eXAiOiJKV1QiLCJhbGciOi..."); // "eyJ0eX…(31 chars)"
 * ```
 */
export function redactToken(token: string): string {
  return `${token.slice(0, 6)}…(${token.length} chars)`;
}

/**
 * A failure on one log line: status, OAuth error, AADSTS codes, ids; the class name and
 * message for failures that are not the service's answer.
 *
 * @example
 * ```ts
 * formatFailure(summarizeFailure(error, false));
 * // "AuthenticationError status=401 error=invalid_client AADSTS7000215 correlationId=..."
 * ```
 */
export function formatFailure(failure: FailureSummary): string {
  if (failure.error === undefined) return `${failure.name}: ${failure.message}`;
  const parts = [`${failure.name} status=${String(failure.status)}`, `error=${failure.error}`];
  if (failure.aadstsCodes.length > 0) parts.push(`AADSTS${failure.aadstsCodes.join(",AADSTS")}`);
  if (failure.correlationId !== undefined) parts.push(`correlationId=${failure.correlationId}`);
  if (failure.traceId !== undefined) parts.push(`traceId=${failure.traceId}`);
  return parts.join(" ");
}

/** The key of an event on a log line: tenant, scopes, and the CAE and claims flags. */
function keyOf(event: CredentialEventKey): string {
  return `tenant=${event.tenantId} scopes=${event.scopes.join(",")}${event.enableCae ? " cae" : ""}${event.hasClaims ? " claims" : ""}`;
}

const iso = (time: number): string => new Date(time).toISOString();

/**
 * Logs one credential event: acquisitions, failures, tokens from the store, the store back
 * and secret rotations at info; a token served stale or expired and an unavailable store at
 * warning; attempts started and forgotten keys at verbose. The credential subscribes it to its own
 * `events$`: the log is one reader of the events, not a second source.
 *
 * @example
 * ```ts
 * credential.events$.subscribe(logCredentialEvent);
 * ```
 */
export function logCredentialEvent(event: CredentialEvent): void {
  switch (event.type) {
    case "acquisition-started":
      logger.verbose(`acquiring ${keyOf(event)} attempt=${event.attempt}`);
      return;
    case "acquisition-succeeded":
      logger.info(
        `acquired ${keyOf(event)} in ${Math.round(event.durationMs)}ms expiresOn=${iso(event.expiresOnTimestamp)} refreshAt=${iso(event.refreshAt)}`,
      );
      return;
    case "acquisition-failed":
      logger.info(
        `acquisition failed ${keyOf(event)} attempt=${event.attempt} transient=${event.failure.transient}${event.retryInMs !== undefined ? ` retryInMs=${event.retryInMs}` : ""} ${formatFailure(event.failure)}`,
      );
      return;
    case "token-served-stale":
      logger.warning(
        `refresh failed, serving the held token ${keyOf(event)} until ${iso(event.usableUntil)}: ${formatFailure(event.failure)}`,
      );
      return;
    case "token-expired":
      logger.warning(
        `the held token expired while retrying ${keyOf(event)}: ${formatFailure(event.failure)}`,
      );
      return;
    case "token-from-store":
      logger.info(
        `token from the shared cache ${keyOf(event)} expiresOn=${iso(event.expiresOnTimestamp)} refreshAt=${iso(event.refreshAt)}`,
      );
      return;
    case "store-unavailable":
      logger.warning(
        `token store unavailable (${keyOf(event)}): acquiring tokens without it until it answers again. ${formatFailure(event.failure)}`,
      );
      return;
    case "store-available":
      logger.info("token store available again: tokens are shared again.");
      return;
    case "key-forgotten":
      logger.verbose(`forgot idle ${keyOf(event)}`);
      return;
    case "secret-rotated":
      logger.info(
        `ClientSecretCredential: client secret rotated from ${event.previousFingerprint} to ${event.fingerprint}; new token requests use ${event.fingerprint}, tokens already held stay in use.`,
      );
      return;
  }
}

/** MSAL's level for the current `@azure/logger` level. */
export function msalLogLevel(): LogLevel {
  switch (getLogLevel()) {
    case "verbose":
      return LogLevel.Verbose;
    case "info":
      return LogLevel.Info;
    case "warning":
      return LogLevel.Warning;
    default:
      return LogLevel.Error;
  }
}

/**
 * MSAL's `loggerCallback`, routed into our logger. Messages MSAL marks as holding PII are
 * dropped whatever the configuration, as Azure Identity's `defaultLoggerCallback` does.
 *
 * @example
 * ```ts
 * new ConfidentialClientApplication({ auth, system: { loggerOptions: {
 *   loggerCallback: msalLoggerCallback, piiLoggingEnabled: false, logLevel: msalLogLevel() } } });
 * ```
 */
export const msalLoggerCallback = (
  level: LogLevel,
  message: string,
  containsPii: boolean,
): void => {
  if (containsPii) return;
  switch (level) {
    case LogLevel.Error:
    case LogLevel.Warning:
    case LogLevel.Info:
      logger.info(`MSAL: ${message}`);
      return;
    default:
      logger.verbose(`MSAL: ${message}`);
  }
};
