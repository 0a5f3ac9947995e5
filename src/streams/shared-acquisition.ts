/**
 * The shared-cache acquisition protocol (persistent file cache, Redis fleet): read the cache
 * before acquiring, take the refresh lease or wait for the holder that has it, write what was
 * acquired, and watch the tokens the other holders write. Also which stored tokens are usable
 * and which are due. An acquisition cycle calls it through {@link SharedAcquisition} only.
 */
import { Subject, Subscription, from } from "rxjs";
import type { Observable } from "rxjs";
import { AbortError } from "../errors/index.js";
import { clampDelay } from "../operators/index.js";
import { baseRefreshTime, forcedWindow } from "./refresh-policy.js";
import {
  hasUsableToken,
  noop,
  toDeadlineClock,
  type Entry,
  type RegistryContext,
} from "./registry-state.js";
import type {
  AcquiredToken,
  SharedTokenCache,
  SharedTokenEntry,
  SharedTokenLease,
  TokenKey,
} from "./types.js";

/** What the registry and its acquisition cycles ask of the shared cache. */
export interface SharedAcquisition<K extends TokenKey> {
  /** The cache key of `key`, or `undefined` to keep that key out of the cache. */
  keyOf(key: K): string | undefined;
  /** Registers an entry with a cache key, for updates other holders write, and starts watching. */
  track(entry: Entry<K>, sharedKey: string): void;
  /** Stops delivering other holders' updates to a forgotten entry. */
  untrack(entry: Entry<K>, sharedKey: string): void;
  /**
   * One acquisition of `entry` through the cache: a stored token, another holder's, or one
   * acquired under the lease and written back. `deadline()` is the last moment the cycle may
   * wait for another holder's token.
   */
  acquire(
    entry: Entry<K>,
    sharedKey: string,
    signal: AbortSignal,
    deadline: () => number,
  ): Promise<AcquiredToken>;
  /**
   * For a token {@link SharedAcquisition.acquire} read from the cache rather than acquired:
   * when it leaves its usable life (on the deadline clock) and whether it was already due for refresh when served (a
   * cold start serves a usable stored token at once and refreshes it in the background, as
   * `get` does with a stale-but-usable token). `undefined` for a token acquired here.
   */
  servedFromCache(
    acquired: AcquiredToken,
  ): { readonly usableUntil: number; readonly due: boolean } | undefined;
  /** Stops watching and forgets the tracked entries. */
  close(): void;
}

/**
 * Creates the protocol over `cache`. `adopt` takes a token another holder wrote while the key
 * has no cycle in flight (the cycles' `adopt`).
 */
export function createSharedAcquisition<K extends TokenKey>(
  context: RegistryContext<K>,
  cache: SharedTokenCache<K>,
  leaseTtlMs: number,
  leasePollMs: number,
  adopt: (entry: Entry<K>, acquired: AcquiredToken, usableUntil: number) => void,
): SharedAcquisition<K> {
  // Shared entries are on the wall clock (every holder's own): they are compared with
  // `wallNow()`; the entry's own deadlines with `scheduler.now()` (the deadline clock).
  const { scheduler, wallNow, policy, emit } = context;
  /** Entries by shared-cache key, for updates written by other holders. */
  const bySharedKey = new Map<string, Entry<K>>();
  /**
   * Every watched update (writes, deletes, lease releases), for acquisitions waiting on
   * another holder's lease.
   */
  const sharedUpdates = new Subject<{
    readonly key: string;
    readonly entry: SharedTokenEntry | undefined;
  }>();
  let watching: Subscription | undefined;
  /** Whether the shared cache failed last time (logged once per outage). */
  let sharedDown = false;
  /** Tokens that came from the cache rather than from `acquire`, and whether they were due. */
  const fromShared = new WeakMap<AcquiredToken, { readonly due: boolean }>();

  function sharedFailed(entry: Entry<K>, error: unknown): void {
    if (sharedDown) return;
    sharedDown = true;
    emit({ type: "shared-cache-unavailable", keyId: entry.key.id, key: entry.key, error });
  }

  function sharedUp(entry: Entry<K>): void {
    if (!sharedDown) return;
    sharedDown = false;
    emit({ type: "shared-cache-available", keyId: entry.key.id, key: entry.key });
  }

  /**
   * When a stored token leaves its usable life. The forced window depends on the lifetime the
   * token was issued with, which the entry does not carry: computing it from the time of
   * reading (as for a token just acquired) would shrink the window of a token read late in
   * its life and serve it inside its real forced window. The writer's refresh time is at or
   * before half-life for Entra ID tokens (`refresh_in` is about half the lifetime), so
   * `2 × refreshAfter − expiresOn` is at or before the time it was issued: the window computed
   * from there is at least the real one. Without a refresh time, the full window applies.
   */
  function sharedUsableUntil(shared: SharedTokenEntry, now: number): number {
    const { expiresOnTimestamp, refreshAfterTimestamp } = shared;
    const issuedAt =
      refreshAfterTimestamp !== undefined && Number.isFinite(refreshAfterTimestamp)
        ? Math.min(now, 2 * refreshAfterTimestamp - expiresOnTimestamp)
        : Number.NEGATIVE_INFINITY;
    return expiresOnTimestamp - forcedWindow(policy, issuedAt, expiresOnTimestamp);
  }

  /** Whether a shared entry is newer than our token and still outside its forced window. */
  function isUsableShared(
    entry: Entry<K>,
    shared: SharedTokenEntry | undefined,
    now: number,
  ): shared is SharedTokenEntry {
    if (shared === undefined) return false;
    const { expiresOnTimestamp } = shared;
    if (!(expiresOnTimestamp > (entry.token?.expiresOnTimestamp ?? Number.NEGATIVE_INFINITY))) {
      return false;
    }
    return now < sharedUsableUntil(shared, now);
  }

  /**
   * Whether a shared entry should be served instead of acquiring: newer than ours, outside
   * its forced window, and not yet due for refresh.
   */
  function isFreshShared(
    entry: Entry<K>,
    shared: SharedTokenEntry | undefined,
    now: number,
  ): shared is SharedTokenEntry {
    if (!isUsableShared(entry, shared, now)) return false;
    const { expiresOnTimestamp, refreshAfterTimestamp } = shared;
    const dueAt =
      refreshAfterTimestamp !== undefined && Number.isFinite(refreshAfterTimestamp)
        ? refreshAfterTimestamp
        : baseRefreshTime(policy, now, expiresOnTimestamp);
    return now < dueAt;
  }

  /**
   * Whether a usable shared entry that is already due should be served at once and refreshed
   * in the background: only when we have no usable token (a cold start), which is `get`'s
   * stale-but-usable rule. With a usable token of our own we keep it and refresh instead.
   */
  function isServableWhileDue(
    entry: Entry<K>,
    shared: SharedTokenEntry | undefined,
  ): shared is SharedTokenEntry {
    return !hasUsableToken(entry, scheduler.now()) && isUsableShared(entry, shared, wallNow());
  }

  function servedFromShared(shared: SharedTokenEntry, due = false): AcquiredToken {
    const token: AcquiredToken = {
      token: shared.token,
      expiresOnTimestamp: shared.expiresOnTimestamp,
      refreshAfterTimestamp: shared.refreshAfterTimestamp,
    };
    fromShared.set(token, { due });
    return token;
  }

  /** One subscription per registry to tokens written by the other holders of the cache. */
  function watchShared(): void {
    if (watching !== undefined || context.isClosed() || cache.watch === undefined) return;
    let source: Observable<{ readonly key: string; readonly entry: SharedTokenEntry | undefined }>;
    try {
      source = cache.watch();
    } catch {
      return;
    }
    const subscription = source.subscribe({
      next: ({ key, entry: shared }) => {
        // A waiter wakes on any update of its key: a release (or a delete) without a token
        // means the holder it waits for is gone, and it should look again.
        sharedUpdates.next({ key, entry: shared });
        // Deletes are not adopted: the token we hold stays valid until it expires.
        if (shared === undefined) return;
        const entry = bySharedKey.get(key);
        // An acquisition in flight sees the update through `sharedUpdates` and ends itself.
        if (entry === undefined || entry.cycle !== undefined) return;
        const now = wallNow();
        if (!isFreshShared(entry, shared, now)) return;
        adopt(
          entry,
          servedFromShared(shared),
          toDeadlineClock(context, sharedUsableUntil(shared, now)),
        );
      },
      // A watch that ends is set up again by the next acquisition of a shared key. Only the
      // current watch can end (a replaced one was unsubscribed first), and one that ends
      // during `subscribe` (an empty one) must not read `subscription` before it exists.
      error: () => {
        watching = undefined;
      },
      complete: () => {
        watching = undefined;
      },
    });
    if (!subscription.closed) watching = subscription;
  }

  /**
   * Resolves with the next fresh update of `sharedKey`; with `undefined` on any other update
   * of it (a lease released without a token, a delete: time to look again), after `delayMs`
   * on the scheduler, or on abort. Subscribed at once, so nothing after this call is missed.
   */
  function nextSharedUpdate(
    entry: Entry<K>,
    sharedKey: string,
    signal: AbortSignal,
  ): {
    readonly within: (delayMs: number) => Promise<SharedTokenEntry | undefined>;
    readonly cancel: () => void;
  } {
    let latest: SharedTokenEntry | undefined;
    let updated = false;
    let wake: (() => void) | undefined;
    const subscription = sharedUpdates.subscribe(({ key, entry: shared }) => {
      if (key !== sharedKey) return;
      const fresh = isFreshShared(entry, shared, wallNow());
      // A stale or unopenable write while the holder still works is not a reason to look
      // again (its release will be); anything else is.
      if (!fresh && shared !== undefined) return;
      if (fresh) latest = shared;
      updated = true;
      wake?.();
    });
    return {
      within: (delayMs) =>
        new Promise((resolve) => {
          if (updated || signal.aborted) {
            resolve(latest);
            return;
          }
          const timer = new Subscription();
          const done = (): void => {
            timer.unsubscribe();
            signal.removeEventListener("abort", done);
            wake = undefined;
            resolve(latest);
          };
          wake = done;
          signal.addEventListener("abort", done, { once: true });
          timer.add(scheduler.schedule(done, clampDelay(delayMs)));
        }),
      cancel: () => subscription.unsubscribe(),
    };
  }

  /**
   * One `acquire` as a Promise that settles on abort: an Observable source is unsubscribed
   * then, and none is started once the signal has fired (the cycle was cancelled while the
   * shared cache was being consulted).
   */
  function acquireOnce(key: K, signal: AbortSignal): Promise<AcquiredToken> {
    return new Promise<AcquiredToken>((resolve, reject) => {
      const abort = (): void =>
        reject(new AbortError("The token request was aborted: nobody waits for it any longer."));
      if (signal.aborted) {
        abort();
        return;
      }
      let done = false;
      const subscription = from(context.acquire(key, signal)).subscribe({
        next: (value) => {
          done = true;
          resolve(value);
        },
        error: (error: unknown) => {
          done = true;
          // The acquirer's own (already typed) error, passed on unchanged.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(error);
        },
        complete: () => reject(new TypeError("acquire completed without a token")),
      });
      if (done) subscription.unsubscribe();
      signal.addEventListener(
        "abort",
        () => {
          subscription.unsubscribe();
          abort();
        },
        { once: true },
      );
    });
  }

  /** Acquires and writes the result to the shared cache (a failed write is only reported). */
  async function acquireAndShare(
    entry: Entry<K>,
    sharedKey: string,
    signal: AbortSignal,
    lease: SharedTokenLease | undefined,
  ): Promise<AcquiredToken> {
    let acquired: AcquiredToken;
    try {
      acquired = await acquireOnce(entry.key, signal);
    } catch (error) {
      if (lease !== undefined) void lease.release().catch(noop);
      throw error;
    }
    const now = wallNow();
    // Written without jitter: every reader adds its own, so the fleet does not wake at once.
    const shared: SharedTokenEntry = {
      token: acquired.token,
      expiresOnTimestamp: acquired.expiresOnTimestamp,
      refreshAfterTimestamp: baseRefreshTime(
        policy,
        now,
        acquired.expiresOnTimestamp,
        acquired.refreshAfterTimestamp,
      ),
    };
    // The lease is held until the token is written, so no other holder acquires meanwhile;
    // our own subscribers do not wait for the write.
    void cache
      .write(sharedKey, shared)
      .then(
        () => sharedUp(entry),
        (error: unknown) => sharedFailed(entry, error),
      )
      .finally(() => lease?.release().catch(noop));
    return acquired;
  }

  /**
   * One acquisition through the shared cache: (1) watch, then read: a fresh shared token is
   * served with no request; (2) take the lease; if another holder has it, wait for its token,
   * its release, or the poll (`leasePollMs`, never past our deadline) and start over: the
   * poll covers what the watch cannot deliver (an update published before our SUBSCRIBE was
   * active or during a reconnect, a token sealed under another secret); (3) holding the
   * lease, read again and only then acquire, write, release. If the cache fails, acquire on
   * our own.
   */
  async function acquireShared(
    entry: Entry<K>,
    sharedKey: string,
    signal: AbortSignal,
    deadline: () => number,
  ): Promise<AcquiredToken> {
    const aborted = (): AbortError =>
      new AbortError("The request for a token was aborted by its abortSignal.");
    watchShared();
    for (;;) {
      if (signal.aborted) throw aborted();
      const update = nextSharedUpdate(entry, sharedKey, signal);
      try {
        let stored: SharedTokenEntry | undefined;
        try {
          stored = await cache.read(sharedKey);
          sharedUp(entry);
        } catch (error) {
          sharedFailed(entry, error);
          return await acquireAndShare(entry, sharedKey, signal, undefined);
        }
        if (signal.aborted) throw aborted();
        if (isFreshShared(entry, stored, wallNow())) return servedFromShared(stored);
        if (isServableWhileDue(entry, stored)) {
          return servedFromShared(stored, true);
        }
        if (cache.lease === undefined) {
          return await acquireAndShare(entry, sharedKey, signal, undefined);
        }
        const now = scheduler.now();
        const left = hasUsableToken(entry, now) ? entry.usableUntil - now : leaseTtlMs;
        const ttl = Math.max(1, Math.ceil(Math.min(leaseTtlMs, left)));
        let lease: SharedTokenLease | null;
        try {
          lease = await cache.lease(sharedKey, ttl);
        } catch (error) {
          sharedFailed(entry, error);
          return await acquireAndShare(entry, sharedKey, signal, undefined);
        }
        if (signal.aborted) {
          if (lease !== null) void lease.release().catch(noop);
          throw aborted();
        }
        if (lease === null) {
          const wait = Math.min(ttl, leasePollMs, deadline() - scheduler.now());
          if (wait <= 0) return await acquireAndShare(entry, sharedKey, signal, undefined);
          const written = await update.within(wait);
          if (written !== undefined && isFreshShared(entry, written, wallNow())) {
            return servedFromShared(written);
          }
          continue;
        }
        let again: SharedTokenEntry | undefined;
        try {
          again = await cache.read(sharedKey);
        } catch {
          again = undefined;
        }
        if (isFreshShared(entry, again, wallNow())) {
          void lease.release().catch(noop);
          return servedFromShared(again);
        }
        if (signal.aborted) {
          void lease.release().catch(noop);
          throw aborted();
        }
        return await acquireAndShare(entry, sharedKey, signal, lease);
      } finally {
        update.cancel();
      }
    }
  }

  return {
    keyOf: (key) => cache.keyOf(key),
    track(entry, sharedKey) {
      bySharedKey.set(sharedKey, entry);
      watchShared();
    },
    untrack(entry, sharedKey) {
      if (bySharedKey.get(sharedKey) === entry) bySharedKey.delete(sharedKey);
    },
    acquire: acquireShared,
    servedFromCache(acquired) {
      const served = fromShared.get(acquired);
      return served === undefined
        ? undefined
        : {
            usableUntil: toDeadlineClock(context, sharedUsableUntil(acquired, wallNow())),
            due: served.due,
          };
    },
    close() {
      watching?.unsubscribe();
      watching = undefined;
      sharedUpdates.complete();
      bySharedKey.clear();
    },
  };
}
