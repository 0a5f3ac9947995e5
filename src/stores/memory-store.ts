import { Subject, filter, type Observable } from "rxjs";
import type { TokenLease, TokenStore, TokenStoreEntry, TokenStoreUpdate } from "./token-store.js";

/** Options of {@link createMemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /**
   * The clock for expiry and leases, in epoch milliseconds (pass the registry scheduler's
   * `now` for virtual-time tests).
   * @default Date.now
   */
  readonly now?: () => number;
}

function closedError(): Error {
  return new Error("The token store is closed; create a new store to keep using it.");
}

/**
 * The default store: a `Map` in this process. Nothing leaves memory, so nothing is sealed.
 * Several credentials in one process can share it; `watch` and `lease` work among them.
 * Expiry and leases are checked against `now()` when read, so the store sets no timers.
 *
 * @example
 * ```ts
 * const store = createMemoryTokenStore();
 * await store.write(key, { token, expiresOnTimestamp: Date.now() + 3_600_000 });
 * (await store.read(key))?.token; // token
 * ```
 */
export function createMemoryTokenStore(options: MemoryTokenStoreOptions = {}): TokenStore {
  const now = options.now ?? Date.now;
  const entries = new Map<string, TokenStoreEntry>();
  const leases = new Map<string, { readonly holder: symbol; readonly until: number }>();
  const updates = new Subject<TokenStoreUpdate>();
  let closed = false;

  function check(): void {
    if (closed) throw closedError();
  }

  return {
    read(key) {
      if (closed) return Promise.reject(closedError());
      const entry = entries.get(key);
      if (entry !== undefined && entry.expiresOnTimestamp <= now()) {
        entries.delete(key);
        return Promise.resolve(undefined);
      }
      return Promise.resolve(entry);
    },
    write(key, entry) {
      if (closed) return Promise.reject(closedError());
      const copy: TokenStoreEntry = { ...entry };
      if (copy.expiresOnTimestamp > now()) entries.set(key, copy);
      else entries.delete(key);
      updates.next({ key, entry: entries.get(key) });
      return Promise.resolve();
    },
    delete(key) {
      if (closed) return Promise.reject(closedError());
      entries.delete(key);
      updates.next({ key, entry: undefined });
      return Promise.resolve();
    },
    watch(key?: string): Observable<TokenStoreUpdate> {
      check();
      return key === undefined
        ? updates.asObservable()
        : updates.pipe(filter((u) => u.key === key));
    },
    lease(key, ttlMs) {
      if (closed) return Promise.reject(closedError());
      const current = leases.get(key);
      const at = now();
      if (current !== undefined && current.until > at) return Promise.resolve(null);
      const holder = Symbol(key);
      leases.set(key, { holder, until: at + ttlMs });
      const lease: TokenLease = {
        release() {
          // Compare-and-delete, as the Redis store does: a lapsed lease taken over by
          // someone else is theirs now.
          if (leases.get(key)?.holder === holder) {
            leases.delete(key);
            // Announced, as the Redis store does: a waiter looks again at once.
            if (!closed) updates.next({ key, entry: undefined, released: true });
          }
          return Promise.resolve();
        },
      };
      return Promise.resolve(lease);
    },
    close() {
      if (!closed) {
        closed = true;
        entries.clear();
        leases.clear();
        updates.complete();
      }
      return Promise.resolve();
    },
  };
}
