/**
 * The keyed token registry: one entry per key, the `get` fast path that answers from memory,
 * callers joining the acquisition in flight, the shared `stream` of each key, the bound on
 * claims keys, forgetting entries that hold nothing, and `close()`. One acquisition cycle (attempts, retries, deadlines) lives in
 * `acquisition-cycle.ts`; the shared-cache protocol in `shared-acquisition.ts`.
 */
import type { AccessToken } from "@azure/core-auth";
import { Observable, ReplaySubject, share, throwError } from "rxjs";
import type { Subscriber } from "rxjs";
import { AbortError, CredentialUnavailableError, InvalidArgumentError } from "../errors/index.js";
import { dropStale, unrefScheduler } from "../operators/index.js";
import { createAcquisitionCycles } from "./acquisition-cycle.js";
import { HitTable, NO_SLOT } from "./hit-table.js";
import { resolveRefreshPolicy, type RefreshPolicyOptions } from "./refresh-policy.js";
import {
  closedError,
  connectionCount,
  hasUsableToken,
  newEntry,
  noop,
  subscribersOf,
  toWallClock,
  type Cycle,
  type Entry,
  type RegistryContext,
} from "./registry-state.js";
import { engineClocks } from "./engine-clock.js";
import { createSharedAcquisition } from "./shared-acquisition.js";
import type {
  FailureClass,
  KeyStatus,
  RegistryEvent,
  TokenKey,
  TokenRegistry,
  TokenRegistryOptions,
} from "./types.js";

/** Options of {@link createTokenRegistry}. */
export interface CreateTokenRegistryOptions<K extends TokenKey> extends TokenRegistryOptions<K> {
  /**
   * Refresh schedule, forced window and retry knobs, merged over `DEFAULT_REFRESH_POLICY`.
   * @default DEFAULT_REFRESH_POLICY
   */
  readonly policy?: Partial<RefreshPolicyOptions> | undefined;
  /**
   * How many short-lived (claims) keys are remembered at most. Idle ones are forgotten at
   * once (the least recently used first, should any remain); when every remembered one is
   * busy, a new one is refused with `CredentialUnavailableError` rather than breaking
   * single-flight for a busy key.
   * @default 1_000
   */
  readonly maxShortLivedKeys?: number | undefined;
}

/** The default of {@link TokenRegistryOptions.leaseTtlMs}: two requests of up to 30 s each (metadata GET, token POST) plus a margin. */
export const DEFAULT_LEASE_TTL_MS = 65_000;

/** The default of {@link TokenRegistryOptions.leasePollMs}. */
export const DEFAULT_LEASE_POLL_MS = 1_000;

/** The default of {@link CreateTokenRegistryOptions.maxShortLivedKeys}. */
export const DEFAULT_MAX_SHORT_LIVED_KEYS = 1_000;

/**
 * How many remembered keys each new key's insertion checks for idleness (no usable token, no
 * acquisition in flight, no subscriber). A full pass over n entries takes n / 4 insertions,
 * so idle entries never outnumber the live ones (n <= 2 x live), with no timer per key and
 * nothing on the fast path.
 */
const SWEEP_PER_INSERT = 4;

/**
 * Creates the keyed, single-flight, self-refreshing token registry (see DESIGN.md
 * "Semantics"): one shared token stream per key, a `get` fast path that answers from memory
 * with a Map lookup and the hit table (hit-table.ts), which also keeps a caller's memo of
 * hits told (`onHit`, `hitsCurrent`), background refresh while a stream is subscribed,
 * retries with backoff and jitter that never outlive the current token, and `close()`.
 *
 * @example
 * ```ts
 * const registry = createTokenRegistry({
 *   acquire: (key, signal) => fetchToken(key, signal),
 *   classify: (err) => ({ transient: isAuthenticationError(err) && err.transient }),
 * });
 * const token = await registry.get({ id: "tenant|https://storage.azure.com/.default" });
 * registry.stream(key).subscribe((t) => socket.reauthenticate(t.token));
 * await registry.close();
 * ```
 */
export function createTokenRegistry<K extends TokenKey>(
  options: CreateTokenRegistryOptions<K>,
): TokenRegistry<K> {
  const { acquire, classify } = options;
  // Deadlines on a monotonic clock in real time (a wall clock stepped back must not serve an
  // expired token); token times stay on the wall clock.
  const { scheduler, wallNow, hitNow } = engineClocks(options.scheduler ?? unrefScheduler);
  const onEvent = options.onEvent;
  const onForget = options.onForget;
  const maxShortLived = options.maxShortLivedKeys ?? DEFAULT_MAX_SHORT_LIVED_KEYS;
  const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isFinite(leaseTtlMs) || leaseTtlMs < 1) {
    throw new InvalidArgumentError(
      `Expected \`leaseTtlMs\` to be a positive number of milliseconds, got ${String(leaseTtlMs)}.`,
    );
  }
  const leasePollMs = options.leasePollMs ?? DEFAULT_LEASE_POLL_MS;
  if (!Number.isFinite(leasePollMs) || leasePollMs < 1) {
    throw new InvalidArgumentError(
      `Expected \`leasePollMs\` to be a positive number of milliseconds, got ${String(leasePollMs)}.`,
    );
  }
  if (!Number.isInteger(maxShortLived) || maxShortLived < 1) {
    throw new InvalidArgumentError(
      `Expected \`maxShortLivedKeys\` to be a positive integer, got ${String(maxShortLived)}.`,
    );
  }

  const entries = new Map<string, Entry<K>>();
  const shortLived = new Map<string, Entry<K>>();
  /** Where the amortised sweep of `entries` resumes (a Map iterator survives deletes and inserts). */
  let sweepCursor: Iterator<Entry<K>> | undefined;
  let closed = false;

  const context: RegistryContext<K> = {
    // The shared-cache protocol calls `acquire` with the key only: the caller's context is
    // the one its entry's cycle carries.
    acquire: (key, signal, callerContext) =>
      acquire(
        key,
        signal,
        callerContext ??
          (key.shortLived === true ? shortLived : entries).get(key.id)?.cycle?.callerContext,
      ),
    classify: (error: unknown): FailureClass => {
      try {
        return classify(error);
      } catch {
        return { transient: false };
      }
    },
    scheduler,
    wallNow,
    random: options.random ?? Math.random,
    policy: resolveRefreshPolicy(options.policy),
    emit: (event: RegistryEvent<K>): void => {
      if (onEvent === undefined) return;
      try {
        onEvent(event);
      } catch {
        // A throwing listener must not break token delivery.
      }
    },
    isClosed: () => closed,
    hits: new HitTable<K>(options.onHit, hitNow),
  };
  const { hits } = context;
  const shared =
    options.sharedCache === undefined
      ? undefined
      : createSharedAcquisition(
          context,
          options.sharedCache,
          leaseTtlMs,
          leasePollMs,
          (entry, acquired, until) => cycles.adopt(entry, acquired, until),
        );
  const cycles = createAcquisitionCycles(context, shared, forgetIfIdle);

  function entryFor(key: K): Entry<K> {
    const map = key.shortLived === true ? shortLived : entries;
    let entry = map.get(key.id);
    if (entry !== undefined) {
      if (map === shortLived) {
        // Re-insert to mark it most recently used (Map keeps insertion order).
        map.delete(key.id);
        map.set(key.id, entry);
      }
      return entry;
    }
    // Before the new entry is in the map: it holds nothing yet, and must not be swept.
    if (map === entries) sweep();
    const sharedKey = key.shortLived === true ? undefined : shared?.keyOf(key);
    entry = newEntry(key, sharedKey, map === entries ? hits.allocate(key) : NO_SLOT);
    map.set(key.id, entry);
    if (sharedKey !== undefined) shared?.track(entry, sharedKey);
    if (map === shortLived && map.size > maxShortLived && !evictIdleShortLived(entry)) {
      // Every remembered claims key is busy. Evicting a busy one would let its next caller
      // start a second request while the first is in flight (breaking single-flight), so a
      // flood of distinct claims is refused instead: memory stays bounded either way.
      map.delete(key.id);
      throw new CredentialUnavailableError(
        `More than ${maxShortLived} distinct claims requests are in flight at once (maxShortLivedKeys): this one was refused. Wait for some to finish and try again.`,
      );
    }
    return entry;
  }

  /** Forgets the least recently used idle claims key but `added`; false when all are busy. */
  function evictIdleShortLived(added: Entry<K>): boolean {
    for (const [id, candidate] of shortLived) {
      if (
        candidate !== added &&
        candidate.cycle === undefined &&
        connectionCount(candidate) === 0
      ) {
        shortLived.delete(id);
        context.emit({ type: "key-evicted", keyId: id, key: candidate.key });
        forgotten(candidate);
        return true;
      }
    }
    return false;
  }

  /**
   * Whether `entry` holds nothing worth keeping: no acquisition in flight, no subscriber, and
   * (for a long-lived key) no usable token. A permanent-failure back-off only matters while a
   * usable token is served, so it is never lost this way.
   */
  function isIdle(entry: Entry<K>, now: number): boolean {
    return (
      entry.cycle === undefined &&
      connectionCount(entry) === 0 &&
      (entry.key.shortLived === true || !hasUsableToken(entry, now))
    );
  }

  /** What forgetting an entry also drops: its hit (the caller's memo is told), its shared-cache watch. */
  function forgotten(entry: Entry<K>): void {
    // Whoever still holds this entry (a cycle's callback) finds no token in it.
    entry.resolved = undefined;
    hits.release(entry.slot);
    if (entry.sharedKey !== undefined) shared?.untrack(entry, entry.sharedKey);
    notifyForget(entry.key);
  }

  function notifyForget(key: K): void {
    if (onForget === undefined) return;
    try {
      onForget(key);
    } catch {
      // A throwing callback must not break token delivery.
    }
  }

  /**
   * Forgets `entry` when it holds nothing: after a refusal or a cancelled acquisition with no
   * usable token, and for a claims key as soon as nobody holds it.
   */
  function forgetIfIdle(entry: Entry<K>): void {
    const map = entry.key.shortLived === true ? shortLived : entries;
    if (map.get(entry.key.id) === entry && isIdle(entry, scheduler.now())) {
      map.delete(entry.key.id);
      forgotten(entry);
    }
  }

  /**
   * Checks the next {@link SWEEP_PER_INSERT} entries and forgets the idle ones (tokens that
   * expired with nobody asking): the slow path of a new key pays for the keys that left.
   */
  function sweep(): void {
    const now = scheduler.now();
    for (let checked = 0; checked < SWEEP_PER_INSERT; checked += 1) {
      sweepCursor ??= entries.values();
      const next = sweepCursor.next();
      if (next.done === true) {
        sweepCursor = undefined;
        return;
      }
      const entry = next.value;
      if (isIdle(entry, now)) {
        entries.delete(entry.key.id);
        forgotten(entry);
      }
    }
  }

  function join(
    entry: Entry<K>,
    cycle: Cycle,
    signal: AbortSignal | undefined,
  ): Promise<AccessToken> {
    cycle.waiters += 1;
    if (signal === undefined) return cycle.promise;
    return new Promise<AccessToken>((resolve, reject) => {
      const onAbort = (): void => {
        reject(new AbortError("The request for a token was aborted by its abortSignal."));
        cycle.waiters -= 1;
        if (!cycle.done && cycle.waiters === 0 && connectionCount(entry) === 0) {
          cycles.cancel(entry, cycle, new AbortError("Nobody waits for this token any longer."));
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      cycle.promise.then(
        (token) => {
          signal.removeEventListener("abort", onAbort);
          resolve(token);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          // The acquirer's own (already typed) error, passed on unchanged.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(error);
        },
      );
    });
  }

  function slowGet(
    key: K,
    signal: AbortSignal | undefined,
    callerContext: unknown,
  ): Promise<AccessToken> {
    if (closed) return Promise.reject(closedError());
    if (signal?.aborted === true) {
      // A caller that keeps something per key as it calls (onForget's reason to be) learns
      // that this key holds nothing.
      if (!(key.shortLived === true ? shortLived : entries).has(key.id)) notifyForget(key);
      return Promise.reject(
        new AbortError("The request for a token was aborted by its abortSignal."),
      );
    }
    let entry: Entry<K>;
    try {
      entry = entryFor(key);
    } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(error);
    }
    const now = scheduler.now();
    if (key.shortLived !== true && hasUsableToken(entry, now)) {
      // A usable token past its refresh time (or a hit the turn's clock had not seen yet).
      const due = now >= entry.refreshAt && now >= entry.blockedUntil;
      if (due && entry.cycle === undefined) cycles.start(entry);
      return entry.resolved as Promise<AccessToken>;
    }
    return join(entry, entry.cycle ?? cycles.start(entry, callerContext), signal);
  }

  function connect(entry: Entry<K>, subscriber: Subscriber<AccessToken>): () => void {
    const key = entry.key;
    (entry.connections ??= new Set()).add(subscriber);
    const now = scheduler.now();
    if (hasUsableToken(entry, now)) {
      subscriber.next(entry.token as AccessToken);
      if (key.shortLived !== true) cycles.scheduleRefresh(entry);
    } else if (entry.cycle === undefined) {
      cycles.start(entry);
    }
    return () => disconnect(entry, subscriber);
  }

  function disconnect(entry: Entry<K>, subscriber: Subscriber<AccessToken>): void {
    if (entry.connections?.delete(subscriber) !== true || entry.connections.size > 0) return;
    entry.connections = undefined;
    cycles.stopRefreshTimer(entry);
    const cycle = entry.cycle;
    if (cycle !== undefined && cycle.waiters === 0) {
      cycles.cancel(entry, cycle, new AbortError("Nobody waits for this token any longer."));
    }
    forgetIfIdle(entry);
  }

  return {
    get(key, getOptions) {
      // A cache hit through the hit table: no allocation.
      const signal = getOptions?.signal;
      if (key.shortLived !== true && signal?.aborted !== true) {
        const entry = entries.get(key.id);
        const hit = entry === undefined ? undefined : hits.hit(entry.slot, hitNow());
        if (hit !== undefined) return hit;
      }
      return slowGet(key, signal, getOptions?.callerContext);
    },

    hitsCurrent() {
      return hits.current(hitNow());
    },

    status() {
      const at = scheduler.now();
      const result: KeyStatus<K>[] = [];
      for (const map of [entries, shortLived]) {
        for (const entry of map.values()) {
          // An entry that holds nothing is one the registry forgets (#12): not a live key.
          if (isIdle(entry, at)) continue;
          const token = entry.token;
          result.push({
            key: entry.key,
            expiresOnTimestamp: token?.expiresOnTimestamp,
            // Deadlines are on the deadline clock: users read wall-clock times, as the token's.
            usableUntil:
              token === undefined ? undefined : Math.floor(toWallClock(context, entry.usableUntil)),
            refreshAt: token?.refreshAfterTimestamp,
            refreshing: entry.cycle !== undefined,
            servedStale:
              hasUsableToken(entry, at) && at >= entry.refreshAt && entry.failure !== undefined,
            lastFailure: entry.failure,
          });
        }
      }
      return result;
    },

    stream(key) {
      if (closed) return throwError(closedError);
      // The entry this stream is connected to. A token is deliverable only while it is that
      // entry's current token and before its usable-until time: when connected, the replayed
      // token is the entry's current one (every token is pushed to the connection), and this
      // keeps no per-token state (a WeakMap of deadlines cost about 50 bytes per key).
      let connected: Entry<K> | undefined;
      const deadlineOf = (token: AccessToken): number =>
        connected !== undefined && connected.token === token
          ? connected.usableUntil
          : Number.NEGATIVE_INFINITY;
      return new Observable<AccessToken>((subscriber) => {
        if (closed) {
          subscriber.error(closedError());
          return noop;
        }
        // entryFor may refuse a claims key (every remembered one busy): rxjs turns the
        // throw into this subscriber's error notification.
        connected = entryFor(key);
        return connect(connected, subscriber);
      }).pipe(
        share({
          connector: () => new ReplaySubject<AccessToken>(1),
          // After an error a new subscriber must try again, not see the old error.
          resetOnError: true,
          // Completion only happens on close(); a later subscriber then gets the closed error.
          resetOnComplete: true,
          // The last unsubscriber stops the refresh timer: the next one reconnects.
          resetOnRefCountZero: true,
        }),
        // The replayed token may have entered its forced window since it was emitted.
        dropStale({ deadline: deadlineOf, scheduler }),
      );
    },

    retryRefused() {
      if (closed) return 0;
      let unblocked = 0;
      for (const entry of entries.values()) {
        if (!entry.refused) continue;
        entry.refused = false;
        entry.blockedUntil = Number.NEGATIVE_INFINITY;
        unblocked += 1;
        // Starts the refresh at once when the key has subscribers and is due; `get` callers
        // start it on their next call (the key is due again).
        cycles.scheduleRefresh(entry);
      }
      return unblocked;
    },

    close() {
      if (closed) return Promise.resolve();
      closed = true;
      shared?.close();
      const error = closedError();
      const all = [...entries.values(), ...shortLived.values()];
      entries.clear();
      shortLived.clear();
      sweepCursor = undefined;
      hits.clearAll();
      for (const entry of all) {
        cycles.stopRefreshTimer(entry);
        if (entry.cycle !== undefined) cycles.cancel(entry, entry.cycle, error);
        entry.token = undefined;
        entry.resolved = undefined;
        for (const subscriber of subscribersOf(entry)) subscriber.complete();
        entry.connections?.clear();
      }
      return Promise.resolve();
    },
  };
}
