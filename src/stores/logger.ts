import { createClientLogger } from "@azure/logger";
import type { StoreLogger } from "./token-store.js";

/**
 * The default logger of the stores, on the Azure SDK convention (`AZURE_LOG_LEVEL`).
 *
 * @example
 * ```ts
 * // AZURE_LOG_LEVEL=warning node app.js  → "azure:rx-identity:stores:warning …"
 * ```
 */
export const defaultStoreLogger: StoreLogger = createClientLogger("rx-identity:stores");

/**
 * A store key shortened for log lines (keys are hashes, but long ones are noise).
 *
 * @example
 * ```ts
 * shortKey("nocae.3q2-abcdefghijk"); // "nocae.3q2-abcd…"
 * ```
 */
export function shortKey(key: string): string {
  return key.length > 14 ? `${key.slice(0, 14)}…` : key;
}
