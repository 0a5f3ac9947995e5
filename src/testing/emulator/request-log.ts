/**
 * The emulator's record of token requests: what each asked for and how it was answered, the
 * filters of `requestCount`, and `waitForRequests`. State only; the token endpoint appends.
 */
import { canonicalJson } from "./token-request.js";
import type { RequestFilter, TokenRequestRecord } from "./types.js";

/** A record the token endpoint fills in while it answers (status, whether a fault applied). */
export type LoggedRequest = {
  -readonly [P in keyof TokenRequestRecord]: TokenRequestRecord[P];
};

/** The log of one emulator. */
export interface RequestLog {
  /** Appends `record` and wakes the `waitFor` callers whose count it reaches. */
  readonly add: (record: LoggedRequest) => void;
  /** Copies of the records, oldest first. */
  readonly records: () => readonly TokenRequestRecord[];
  readonly count: (filter?: RequestFilter) => number;
  readonly clear: () => void;
  /** Resolves once `count` requests have arrived in total (since start or `clear`). */
  readonly waitFor: (count: number) => Promise<void>;
}

export function createRequestLog(): RequestLog {
  const log: LoggedRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    add(record) {
      log.push(record);
      for (const waiter of [...waiters]) {
        if (log.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    records: () => log.map((record) => ({ ...record })),
    count: (filter = {}) => log.filter((record) => matchesFilter(record, filter)).length,
    clear: () => {
      log.length = 0;
    },
    waitFor: (count) =>
      log.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
  };
}

function matchesFilter(record: TokenRequestRecord, filter: RequestFilter): boolean {
  if (filter.tenant !== undefined && filter.tenant.toLowerCase() !== record.tenant.toLowerCase())
    return false;
  if (filter.clientId !== undefined && filter.clientId !== record.clientId) return false;
  if (filter.scope !== undefined && !record.scopes.includes(filter.scope)) return false;
  if (filter.status !== undefined && filter.status !== record.status) return false;
  if (filter.cae !== undefined && filter.cae !== record.clientCapabilities.includes("cp1"))
    return false;
  if (filter.claims !== undefined) {
    if (filter.claims === null) return record.claims === undefined;
    if (record.claims === undefined) return false;
    const wanted = typeof filter.claims === "string" ? parseJson(filter.claims) : filter.claims;
    return canonicalJson(wanted) === canonicalJson(parseJson(record.claims));
  }
  return true;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
