/**
 * One line per credential event and per key status, for `watch --events` and the demo. Times
 * are shown relative to `now` ("in 4m", "12s ago"), as an operator reads them.
 */
import type { CredentialEvent, CredentialStatus, FailureSummary } from "../../credential/index.js";
import { formatDuration } from "./format.js";

function failureText(failure: FailureSummary): string {
  const codes = failure.aadstsCodes.map((code) => `AADSTS${code}`).join(",");
  const detail = [
    failure.status !== undefined ? `status ${failure.status}` : undefined,
    failure.error,
    codes === "" ? undefined : codes,
  ].filter((part) => part !== undefined);
  return `${failure.transient ? "transient" : "permanent"} ${failure.name}${detail.length > 0 ? ` (${detail.join(" ")})` : ""}`;
}

function until(time: number, now: number): string {
  return time >= now ? `in ${formatDuration(time - now)}` : `${formatDuration(now - time)} ago`;
}

/**
 * A credential event on one line, or `undefined` for the chatty ones (attempt started).
 *
 * @example
 * ```ts
 * credential.events$.subscribe((event) => {
 *   const line = formatEvent(event, Date.now());
 *   if (line !== undefined) console.log(line);
 * });
 * ```
 */
export function formatEvent(event: CredentialEvent, now: number): string | undefined {
  const key =
    event.type === "secret-rotated"
      ? ""
      : ` ${event.scopes.join(" ")}${event.enableCae ? " (cae)" : ""}${event.hasClaims ? " (claims)" : ""}`;
  switch (event.type) {
    case "acquisition-started":
      return undefined;
    case "acquisition-succeeded":
      return `event acquired${key} in ${Math.round(event.durationMs)} ms, attempt ${event.attempt + 1}; refresh ${until(event.refreshAt, now)}, expires ${until(event.expiresOnTimestamp, now)}`;
    case "acquisition-failed":
      return `event failed${key}: ${failureText(event.failure)}, attempt ${event.attempt + 1}; ${event.retryInMs === undefined ? "no retry" : `retry in ${formatDuration(event.retryInMs)}`}`;
    case "token-served-stale":
      return `event serving the held token${key} until its usable life ends ${until(event.usableUntil, now)}: ${failureText(event.failure)}`;
    case "token-expired":
      return `event held token expired${key}: ${failureText(event.failure)}`;
    case "token-from-store":
      return `event token from the store${key}; refresh ${until(event.refreshAt, now)}`;
    case "store-unavailable":
      return `event token store unavailable: ${failureText(event.failure)}`;
    case "store-available":
      return "event token store available again";
    case "key-forgotten":
      return `event forgot idle${key}`;
    case "secret-rotated":
      return `event client secret rotated from ${event.previousFingerprint} to ${event.fingerprint}`;
  }
}

/**
 * One line per live key of `status`: usable until, refresh due, refreshing, failures.
 *
 * @example
 * ```ts
 * for (const line of formatStatus(credential.status())) console.log(line);
 * // status https://storage.azure.com/.default: usable for 4m, refresh in 1m, refresh failed 3 times (permanent AuthenticationError (status 401 invalid_client AADSTS7000222))
 * ```
 */
export function formatStatus(status: CredentialStatus): string[] {
  const now = status.at;
  const store = status.tokenStore === "none" ? "" : `, token store ${status.tokenStore}`;
  return status.keys.map((key) => {
    const parts = [
      key.usableUntil === undefined || key.usableUntil <= now
        ? "no usable token"
        : `usable for ${formatDuration(key.usableUntil - now)}`,
    ];
    if (key.refreshAt !== undefined) parts.push(`refresh ${until(key.refreshAt, now)}`);
    if (key.refreshing) parts.push("refreshing now");
    if (key.servedStale) parts.push("served stale");
    if (key.lastFailure !== undefined) {
      parts.push(
        `refresh failed ${key.consecutiveFailures} time${key.consecutiveFailures === 1 ? "" : "s"} (${failureText(key.lastFailure)})`,
      );
    }
    return `status ${key.scopes.join(" ")}${key.enableCae ? " (cae)" : ""}: ${parts.join(", ")}${store}`;
  });
}
