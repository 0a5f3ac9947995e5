import { createClientLogger, getLogLevel, type AzureLogger } from "@azure/logger";
import { LogLevel } from "@azure/msal-node";
import type { RegistryEvent } from "../streams/types.js";

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

/** A short summary of a failure for one log line: status, OAuth error, AADSTS code, ids. */
export function describeFailure(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const record = error as {
    name?: unknown;
    statusCode?: unknown;
    errorResponse?: {
      error?: unknown;
      errorCodes?: readonly number[];
      correlationId?: string;
      traceId?: string;
    };
    message?: unknown;
  };
  const response = record.errorResponse;
  if (response === undefined) {
    return `${String(record.name)}: ${String(record.message)}`;
  }
  const parts = [
    `${String(record.name)} status=${String(record.statusCode)}`,
    `error=${String(response.error)}`,
  ];
  if (response.errorCodes !== undefined && response.errorCodes.length > 0) {
    parts.push(`AADSTS${response.errorCodes.join(",AADSTS")}`);
  }
  if (response.correlationId !== undefined) parts.push(`correlationId=${response.correlationId}`);
  if (response.traceId !== undefined) parts.push(`traceId=${response.traceId}`);
  return parts.join(" ");
}

/**
 * Logs one engine event: acquisitions and failures at info, the rest at verbose.
 *
 * @example
 * ```ts
 * createTokenRegistry({ acquire, classify, onEvent: logRegistryEvent });
 * ```
 */
export function logRegistryEvent(event: RegistryEvent): void {
  switch (event.type) {
    case "acquire-start":
      logger.verbose(`acquiring key=${event.keyId} attempt=${event.attempt}`);
      return;
    case "acquire-success":
      logger.info(
        `acquired key=${event.keyId} expiresOn=${new Date(event.expiresOnTimestamp).toISOString()} refreshAt=${new Date(event.refreshAt).toISOString()}`,
      );
      logger.verbose(`refresh of key=${event.keyId} scheduled at ${event.refreshAt}`);
      return;
    case "acquire-failure":
      logger.info(
        `acquisition failed key=${event.keyId} transient=${event.transient}${event.retryInMs !== undefined ? ` retryInMs=${event.retryInMs}` : ""} ${describeFailure(event.error)}`,
      );
      return;
    case "key-evicted":
      logger.verbose(`evicted key=${event.keyId}`);
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
