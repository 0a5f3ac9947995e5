import type { AccessToken } from "@azure/core-auth";
import { Observable, ReplaySubject, Subject, Subscription, from, share, throwError } from "rxjs";
import type { ObservableInput, SchedulerLike, Subscriber } from "rxjs";
import { AbortError, CredentialUnavailableError, InvalidArgumentError } from "../errors/index.js";
import { clampDelay, dropStale, unrefScheduler } from "../operators/index.js";
import {
  baseRefreshTime,
  forcedWindow,
  refreshTime,
  resolveRefreshPolicy,
  retryDelay,
  type RefreshPolicyOptions,
} from "./refresh-policy.js";
import type {
  AcquiredToken,
  FailureClass,
  RegistryEvent,
  SharedTokenCache,
  SharedTokenEntry,
  SharedTokenLease,
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

/** The default of {@link TokenRegistryOptions.leaseTtlMs}: the request timeout (30 s) plus a margin. */
export const DEFAULT_LEASE_TTL_MS = 35_000;

/** The default of {@link CreateTokenRegistryOptions.maxShortLivedKeys}. */
export const DEFAULT_MAX_SHORT_LIVED_KEYS = 1_000;

/** One acquisition with its retries: what `get` callers join. */
interface Cycle {
  readonly controller: AbortController;
  readonly promise: Promise<AccessToken>;
  readonly resolve: (token: AccessToken) => void;
  readonly reject: (error: unknown) => void;
  readonly startedAt: number;
  /** `get` callers waiting for this cycle. */
  waiters: number;
  attempt: number;
  /** The retry timer, between attempts. */
  timer: Subscription | undefined;
  /** The subscription to the current attempt's `acquire` result. */
  request: Subscription | undefined;
  /**
   * While retrying with no usable token, fires just before the token subscribers still hold
   * expires, to tell them (even with an attempt in flight) that no usable token is left.
   */
  expiryTimer: Subscription | undefined;
  done: boolean;
}

interface Entry<K extends TokenKey> {
  readonly key: K;
  /** The key in the shared cache, or `undefined` when this key is not shared. */
  readonly sharedKey: string | undefined;
  token: AccessToken | undefined;
  /**
   * A promise fulfilled with `token`, cached so the fast path allocates nothing: the promise of
   * the cycle that acquired it (no second promise per key).
   */
  resolved: Promise<AccessToken> | undefined;
  refreshAt: number;
  usableUntil: number;
  /** After a failure while a usable token is served, no new attempt before this time. */
  blockedUntil: number;
  cycle: Cycle | undefined;
  /**
   * The stream subscribers of this key, created with the first one: most keys are only ever
   * read through `get`, and an empty `Set` costs about 150 bytes per key.
   */
  connections: Set<Subscriber<AccessToken>> | undefined;
  refreshTimer: Subscription | undefined;
}

const noop = (): void => undefined;

function closedError(): CredentialUnavailableError {
  return new CredentialUnavailableError(
    "The credential was closed: it no longer gets tokens. Create a new credential to get tokens again.",
  );
}

/**
 * Creates the keyed, single-flight, self-refreshing token registry (see DESIGN.md
 * "Semantics"): one shared token stream per key, a `get` fast path that answers from memory
 * with a Map lookup and a clock read, background refresh while a stream is subscribed,
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
  const scheduler: SchedulerLike = options.scheduler ?? unrefScheduler;
  const random = options.random ?? Math.random;
  const onEvent = options.onEvent;
  const policy = resolveRefreshPolicy(options.policy);
  const maxShortLived = options.maxShortLivedKeys ?? DEFAULT_MAX_SHORT_LIVED_KEYS;
  const sharedCache = options.sharedCache;
  const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isFinite(leaseTtlMs) || leaseTtlMs < 1) {
    throw new InvalidArgumentError(
      `Expected \`leaseTtlMs\` to be a positive number of milliseconds, got ${String(leaseTtlMs)}.`,
    );
  }
  if (!Number.isInteger(maxShortLived) || maxShortLived < 1) {
    throw new InvalidArgumentError(
      `Expected \`maxShortLivedKeys\` to be a positive integer, got ${String(maxShortLived)}.`,
    );
  }

  const entries = new Map<string, Entry<K>>();
  const shortLived = new Map<string, Entry<K>>();
  let closed = false;

  /** Entries by shared-cache key, for updates written by other holders. */
  const bySharedKey = new Map<string, Entry<K>>();
  /** Every watched update, for acquisitions waiting on another holder's lease. */
  const sharedUpdates = new Subject<{ readonly key: string; readonly entry: SharedTokenEntry }>();
  let watching: Subscription | undefined;
  /** Whether the shared cache failed last time (logged once per outage). */
  let sharedDown = false;
  /**
   * Tokens that came from the shared cache rather than from `acquire`, with whether they were
   * already due for refresh when served (a cold start serves a usable stored token at once
   * and refreshes it in the background, as `get` does with a stale-but-usable token).
   */
  const fromShared = new WeakMap<AcquiredToken, { readonly due: boolean }>();

  const emit = (event: RegistryEvent): void => {
    if (onEvent === undefined) return;
    try {
      onEvent(event);
    } catch {
      // A throwing listener must not break token delivery.
    }
  };

  const classifySafely = (error: unknown): FailureClass => {
    try {
      return classify(error);
    } catch {
      return { transient: false };
    }
  };

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
    const sharedKey = key.shortLived === true ? undefined : sharedCache?.keyOf(key);
    entry = {
      key,
      sharedKey,
      token: undefined,
      resolved: undefined,
      refreshAt: Number.POSITIVE_INFINITY,
      usableUntil: Number.NEGATIVE_INFINITY,
      blockedUntil: Number.NEGATIVE_INFINITY,
      cycle: undefined,
      connections: undefined,
      refreshTimer: undefined,
    };
    map.set(key.id, entry);
    if (sharedKey !== undefined) {
      bySharedKey.set(sharedKey, entry);
      watchShared();
    }
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
        emit({ type: "key-evicted", keyId: id });
        return true;
      }
    }
    return false;
  }

  function forgetIfIdle(entry: Entry<K>): void {
    if (
      entry.key.shortLived === true &&
      entry.cycle === undefined &&
      connectionCount(entry) === 0 &&
      shortLived.get(entry.key.id) === entry
    ) {
      shortLived.delete(entry.key.id);
    }
  }

  function connectionCount(entry: Entry<K>): number {
    return entry.connections?.size ?? 0;
  }

  /** Delivers to a copy of the subscribers: a subscriber may disconnect while being called. */
  function subscribersOf(entry: Entry<K>): Subscriber<AccessToken>[] {
    return entry.connections === undefined ? [] : [...entry.connections];
  }

  function hasUsableToken(entry: Entry<K>, now: number): boolean {
    return entry.token !== undefined && now < entry.usableUntil;
  }

  function startCycle(entry: Entry<K>): Cycle {
    let resolve!: (token: AccessToken) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<AccessToken>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Background refreshes have nobody awaiting them: their failure is reported through
    // events and stream errors, never as an unhandled rejection.
    promise.catch(noop);
    const cycle: Cycle = {
      controller: new AbortController(),
      promise,
      resolve,
      reject,
      startedAt: scheduler.now(),
      waiters: 0,
      attempt: 0,
      timer: undefined,
      request: undefined,
      expiryTimer: undefined,
      done: false,
    };
    entry.cycle = cycle;
    stopRefreshTimer(entry);
    attempt(entry, cycle);
    return cycle;
  }

  function attempt(entry: Entry<K>, cycle: Cycle): void {
    cycle.timer = undefined;
    emit({ type: "acquire-start", keyId: entry.key.id, attempt: cycle.attempt });
    let source: ObservableInput<AcquiredToken>;
    try {
      source =
        sharedCache !== undefined && entry.sharedKey !== undefined
          ? acquireShared(entry, cycle, sharedCache, entry.sharedKey)
          : acquire(entry.key, cycle.controller.signal);
    } catch (error) {
      // A synchronous throw is the acquirer's typed error: pass it on unchanged.
      source = throwError(() => error);
    }
    let received = false;
    cycle.request = from(source).subscribe({
      next: (acquired) => {
        if (received) return;
        received = true;
        cycle.request?.unsubscribe();
        onSuccess(entry, cycle, acquired);
      },
      error: (error: unknown) => onFailure(entry, cycle, error),
      complete: () => {
        if (!received) onFailure(entry, cycle, new TypeError("acquire completed without a token"));
      },
    });
    // A synchronous Observable may have finished before `subscribe` returned.
    if (received || cycle.done) cycle.request.unsubscribe();
  }

  function endCycle(entry: Entry<K>, cycle: Cycle): void {
    cycle.done = true;
    cycle.timer?.unsubscribe();
    cycle.timer = undefined;
    cycle.request?.unsubscribe();
    cycle.expiryTimer?.unsubscribe();
    cycle.expiryTimer = undefined;
    if (entry.cycle === cycle) entry.cycle = undefined;
  }

  function onSuccess(entry: Entry<K>, cycle: Cycle, acquired: AcquiredToken): void {
    if (cycle.done) return;
    const now = scheduler.now();
    const expiresOnTimestamp = acquired.expiresOnTimestamp;
    const shared = fromShared.get(acquired);
    const usableUntil =
      shared !== undefined
        ? sharedUsableUntil(acquired, now)
        : expiresOnTimestamp - forcedWindow(policy, now, expiresOnTimestamp);
    if (!(now < usableUntil)) {
      onFailure(
        entry,
        cycle,
        new CredentialUnavailableError(
          `The token service returned a token that expires at ${new Date(expiresOnTimestamp).toISOString()}, which is not in the future: check the clock of this machine.`,
        ),
      );
      return;
    }
    const refreshAt =
      shared?.due === true
        ? now
        : Math.min(
            refreshTime(policy, now, expiresOnTimestamp, acquired.refreshAfterTimestamp, random),
            usableUntil,
          );
    endCycle(entry, cycle);
    // The cycle's promise is fulfilled with this token just below: it is the cached one.
    const token = holdToken(entry, acquired, usableUntil, refreshAt, cycle.promise);
    emit({
      type: shared !== undefined ? "shared-token" : "acquire-success",
      keyId: entry.key.id,
      expiresOnTimestamp,
      refreshAt,
    });
    cycle.resolve(token);
    for (const subscriber of subscribersOf(entry)) subscriber.next(token);
    scheduleRefresh(entry);
    // A stored token served while already due (cold start): refresh it now, in the
    // background, even when only `get` callers hold it.
    if (shared?.due === true && entry.cycle === undefined && !closed) startCycle(entry);
    forgetIfIdle(entry);
  }

  /**
   * Makes `acquired` the key's current token; `resolved` is a promise already (or about to
   * be) fulfilled with it, so the fast path allocates none.
   */
  function holdToken(
    entry: Entry<K>,
    acquired: AcquiredToken,
    usableUntil: number,
    refreshAt: number,
    resolved: Promise<AccessToken> | undefined,
  ): AccessToken {
    const token: AccessToken = {
      token: acquired.token,
      expiresOnTimestamp: acquired.expiresOnTimestamp,
      refreshAfterTimestamp: refreshAt,
      tokenType: "Bearer",
    };
    entry.token = token;
    entry.resolved = resolved ?? Promise.resolve(token);
    entry.refreshAt = refreshAt;
    entry.usableUntil = usableUntil;
    entry.blockedUntil = Number.NEGATIVE_INFINITY;
    return token;
  }

  function onFailure(entry: Entry<K>, cycle: Cycle, error: unknown): void {
    if (cycle.done) return;
    const now = scheduler.now();
    const failure = classifySafely(error);
    // Short-lived keys serve no cached token: their callers wait for a fresh one.
    const usable = entry.key.shortLived !== true && hasUsableToken(entry, now);
    if (failure.transient) {
      const delay = retryDelay(policy, cycle.attempt, failure.retryAfterMs, random);
      const deadline = usable ? entry.usableUntil : retryDeadlineWithoutToken(entry, cycle);
      if (now + delay < deadline) {
        if (!usable) watchHeldExpiry(entry, cycle, error);
        emit({
          type: "acquire-failure",
          keyId: entry.key.id,
          error,
          transient: true,
          retryInMs: delay,
        });
        cycle.attempt += 1;
        cycle.timer = scheduler.schedule(() => attempt(entry, cycle), clampDelay(delay));
        return;
      }
    }
    if (usable) {
      // Keep serving the token we have; try again later, not at once.
      const retryAt = failure.transient
        ? entry.usableUntil
        : Math.min(now + policy.permanentFailureBackoffMs, entry.usableUntil);
      emit({
        type: "acquire-failure",
        keyId: entry.key.id,
        error,
        transient: failure.transient,
        retryInMs: retryAt - now,
      });
      endCycle(entry, cycle);
      entry.blockedUntil = retryAt;
      cycle.resolve(entry.token as AccessToken);
      scheduleRefresh(entry);
      return;
    }
    emit({ type: "acquire-failure", keyId: entry.key.id, error, transient: failure.transient });
    endCycle(entry, cycle);
    if (!hasUsableToken(entry, now)) {
      entry.token = undefined;
      entry.resolved = undefined;
    }
    cycle.reject(error);
    for (const subscriber of subscribersOf(entry)) subscriber.error(error);
    forgetIfIdle(entry);
  }

  /** How long transient failures are retried once no usable token is left. */
  function retryDeadlineWithoutToken(entry: Entry<K>, cycle: Cycle): number {
    return Math.max(cycle.startedAt, entry.usableUntil) + policy.retryWithoutTokenMs;
  }

  /**
   * Subscribers still hold the last token while retries go on without a usable one: if it
   * expires before a fresh token arrives, they get the latest failure then, not after the
   * attempt in flight. `get` callers keep waiting for the cycle.
   */
  function watchHeldExpiry(entry: Entry<K>, cycle: Cycle, error: unknown): void {
    const held = entry.token;
    if (held === undefined || connectionCount(entry) === 0) return;
    cycle.expiryTimer?.unsubscribe();
    cycle.expiryTimer = scheduler.schedule(
      () => {
        cycle.expiryTimer = undefined;
        if (cycle.done || entry.token !== held) return;
        emit({ type: "acquire-failure", keyId: entry.key.id, error, transient: true });
        for (const subscriber of subscribersOf(entry)) subscriber.error(error);
      },
      // A millisecond early: at `expiresOnTimestamp` the token has already stopped working.
      clampDelay(held.expiresOnTimestamp - 1 - scheduler.now()),
    );
  }

  function cancelCycle(entry: Entry<K>, cycle: Cycle, reason: unknown): void {
    endCycle(entry, cycle);
    cycle.controller.abort(reason);
    cycle.reject(reason);
    forgetIfIdle(entry);
  }

  function stopRefreshTimer(entry: Entry<K>): void {
    entry.refreshTimer?.unsubscribe();
    entry.refreshTimer = undefined;
  }

  function scheduleRefresh(entry: Entry<K>): void {
    stopRefreshTimer(entry);
    if (
      closed ||
      entry.key.shortLived === true ||
      connectionCount(entry) === 0 ||
      entry.cycle !== undefined ||
      entry.token === undefined
    ) {
      return;
    }
    const at = Math.max(entry.refreshAt, entry.blockedUntil);
    const delay = at - scheduler.now();
    if (delay <= 0) {
      startCycle(entry);
      return;
    }
    entry.refreshTimer = scheduler.schedule(() => {
      entry.refreshTimer = undefined;
      // A delay longer than the timer maximum fires early: look again rather than refresh.
      scheduleRefresh(entry);
    }, clampDelay(delay));
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
          cancelCycle(entry, cycle, new AbortError("Nobody waits for this token any longer."));
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

  function slowGet(key: K, signal: AbortSignal | undefined): Promise<AccessToken> {
    if (closed) return Promise.reject(closedError());
    if (signal?.aborted === true) {
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
      if (entry.cycle === undefined && now >= entry.blockedUntil) startCycle(entry);
      return entry.resolved as Promise<AccessToken>;
    }
    return join(entry, entry.cycle ?? startCycle(entry), signal);
  }

  function connect(entry: Entry<K>, subscriber: Subscriber<AccessToken>): () => void {
    const key = entry.key;
    (entry.connections ??= new Set()).add(subscriber);
    const now = scheduler.now();
    if (hasUsableToken(entry, now)) {
      subscriber.next(entry.token as AccessToken);
      if (key.shortLived !== true) scheduleRefresh(entry);
    } else if (entry.cycle === undefined) {
      startCycle(entry);
    }
    return () => disconnect(entry, subscriber);
  }

  function disconnect(entry: Entry<K>, subscriber: Subscriber<AccessToken>): void {
    if (entry.connections?.delete(subscriber) !== true || entry.connections.size > 0) return;
    entry.connections = undefined;
    stopRefreshTimer(entry);
    const cycle = entry.cycle;
    if (cycle !== undefined && cycle.waiters === 0) {
      cancelCycle(entry, cycle, new AbortError("Nobody waits for this token any longer."));
    }
    forgetIfIdle(entry);
  }

  // ---- The shared cache (persistent file cache, Redis fleet) --------------------------

  function sharedFailed(entry: Entry<K>, error: unknown): void {
    if (sharedDown) return;
    sharedDown = true;
    emit({ type: "shared-cache-unavailable", keyId: entry.key.id, error });
  }

  function sharedUp(entry: Entry<K>): void {
    if (!sharedDown) return;
    sharedDown = false;
    emit({ type: "shared-cache-available", keyId: entry.key.id });
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
    now: number,
  ): shared is SharedTokenEntry {
    return !hasUsableToken(entry, now) && isUsableShared(entry, shared, now);
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
    if (watching !== undefined || closed || sharedCache?.watch === undefined) return;
    let source: Observable<{ readonly key: string; readonly entry: SharedTokenEntry | undefined }>;
    try {
      source = sharedCache.watch();
    } catch {
      return;
    }
    const subscription = source.subscribe({
      next: ({ key, entry: shared }) => {
        // Deletes are ignored: the token we hold stays valid until it expires.
        if (shared === undefined) return;
        sharedUpdates.next({ key, entry: shared });
        const entry = bySharedKey.get(key);
        // An acquisition in flight sees the update through `sharedUpdates` and ends itself.
        if (entry === undefined || entry.cycle !== undefined) return;
        if (!isFreshShared(entry, shared, scheduler.now())) return;
        adoptShared(entry, servedFromShared(shared));
      },
      // A watch that ends is set up again by the next acquisition of a shared key.
      error: () => {
        if (watching === subscription) watching = undefined;
      },
      complete: () => {
        if (watching === subscription) watching = undefined;
      },
    });
    if (!subscription.closed) watching = subscription;
  }

  /** A token written by another holder, taken between our own refreshes. */
  function adoptShared(entry: Entry<K>, acquired: AcquiredToken): void {
    const now = scheduler.now();
    const { expiresOnTimestamp } = acquired;
    const usableUntil = sharedUsableUntil(acquired, now);
    const refreshAt = Math.min(
      refreshTime(policy, now, expiresOnTimestamp, acquired.refreshAfterTimestamp, random),
      usableUntil,
    );
    const token = holdToken(entry, acquired, usableUntil, refreshAt, undefined);
    emit({ type: "shared-token", keyId: entry.key.id, expiresOnTimestamp, refreshAt });
    for (const subscriber of subscribersOf(entry)) subscriber.next(token);
    scheduleRefresh(entry);
  }

  /**
   * Resolves with the next fresh update of `sharedKey`, or `undefined` after `delayMs` on the
   * scheduler (or on abort). Subscribed at once, so nothing written after this call is missed.
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
    let wake: (() => void) | undefined;
    const subscription = sharedUpdates.subscribe(({ key, entry: shared }) => {
      if (key !== sharedKey || !isFreshShared(entry, shared, scheduler.now())) return;
      latest = shared;
      wake?.();
    });
    return {
      within: (delayMs) =>
        new Promise((resolve) => {
          if (latest !== undefined || signal.aborted) {
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

  /** Acquires and writes the result to the shared cache (a failed write is only reported). */
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
      const subscription = from(acquire(key, signal)).subscribe({
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

  async function acquireAndShare(
    entry: Entry<K>,
    sharedKey: string,
    cache: SharedTokenCache<K>,
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
    const now = scheduler.now();
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
   * served with no request; (2) take the lease; if another holder has it, wait for its token
   * (or the lease TTL, never past our deadline) and start over; (3) holding the lease, read
   * again and only then acquire, write, release. If the cache fails, acquire on our own.
   */
  async function acquireShared(
    entry: Entry<K>,
    cycle: Cycle,
    cache: SharedTokenCache<K>,
    sharedKey: string,
  ): Promise<AcquiredToken> {
    const signal = cycle.controller.signal;
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
          return await acquireAndShare(entry, sharedKey, cache, signal, undefined);
        }
        if (signal.aborted) throw aborted();
        if (isFreshShared(entry, stored, scheduler.now())) return servedFromShared(stored);
        if (isServableWhileDue(entry, stored, scheduler.now())) {
          return servedFromShared(stored, true);
        }
        if (cache.lease === undefined) {
          return await acquireAndShare(entry, sharedKey, cache, signal, undefined);
        }
        const now = scheduler.now();
        const left = hasUsableToken(entry, now) ? entry.usableUntil - now : leaseTtlMs;
        const ttl = Math.max(1, Math.ceil(Math.min(leaseTtlMs, left)));
        let lease: SharedTokenLease | null;
        try {
          lease = await cache.lease(sharedKey, ttl);
        } catch (error) {
          sharedFailed(entry, error);
          return await acquireAndShare(entry, sharedKey, cache, signal, undefined);
        }
        if (signal.aborted) {
          if (lease !== null) void lease.release().catch(noop);
          throw aborted();
        }
        if (lease === null) {
          const deadline = hasUsableToken(entry, scheduler.now())
            ? entry.usableUntil
            : retryDeadlineWithoutToken(entry, cycle);
          const wait = Math.min(ttl, deadline - scheduler.now());
          if (wait <= 0) return await acquireAndShare(entry, sharedKey, cache, signal, undefined);
          const written = await update.within(wait);
          if (written !== undefined && isFreshShared(entry, written, scheduler.now())) {
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
        if (isFreshShared(entry, again, scheduler.now())) {
          void lease.release().catch(noop);
          return servedFromShared(again);
        }
        if (signal.aborted) {
          void lease.release().catch(noop);
          throw aborted();
        }
        return await acquireAndShare(entry, sharedKey, cache, signal, lease);
      } finally {
        update.cancel();
      }
    }
  }

  return {
    get(key, getOptions) {
      // The fast path: a Map lookup and a clock read, no allocation.
      const signal = getOptions?.signal;
      if (key.shortLived !== true) {
        const entry = entries.get(key.id);
        if (
          entry !== undefined &&
          entry.resolved !== undefined &&
          scheduler.now() < entry.refreshAt &&
          signal?.aborted !== true
        ) {
          return entry.resolved;
        }
      }
      return slowGet(key, signal);
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

    close() {
      if (closed) return Promise.resolve();
      closed = true;
      watching?.unsubscribe();
      watching = undefined;
      sharedUpdates.complete();
      bySharedKey.clear();
      const error = closedError();
      const all = [...entries.values(), ...shortLived.values()];
      entries.clear();
      shortLived.clear();
      for (const entry of all) {
        stopRefreshTimer(entry);
        if (entry.cycle !== undefined) cancelCycle(entry, entry.cycle, error);
        entry.token = undefined;
        entry.resolved = undefined;
        for (const subscriber of subscribersOf(entry)) subscriber.complete();
        entry.connections?.clear();
      }
      return Promise.resolve();
    },
  };
}
