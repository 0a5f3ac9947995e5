/**
 * One acquisition cycle of a key, from its first attempt to a token or a final failure: the
 * attempts, the retry schedule between them and the deadlines it never retries past, the
 * watch on the held token's expiry while retrying, what a success or a failure does to the
 * key's state and subscribers, and the refresh timer that starts the next cycle while a stream
 * is subscribed. Where a token comes from is the acquirer's business, or the shared-cache
 * protocol's (`shared-acquisition.ts`) for a shared key.
 */
import type { AccessToken } from "@azure/core-auth";
import { from, throwError } from "rxjs";
import type { ObservableInput } from "rxjs";
import { CredentialUnavailableError } from "../errors/index.js";
import { clampDelay } from "../operators/index.js";
import { forcedWindow, refreshTime, retryDelay } from "./refresh-policy.js";
import {
  connectionCount,
  hasUsableToken,
  noop,
  subscribersOf,
  toDeadlineClock,
  toWallClock,
  type Cycle,
  type Entry,
  type RegistryContext,
} from "./registry-state.js";
import type { SharedAcquisition } from "./shared-acquisition.js";
import type { AcquiredToken, TokenKey } from "./types.js";

/** The cycles of one registry. */
export interface AcquisitionCycles<K extends TokenKey> {
  /**
   * Starts a cycle for `entry` (which has none) and its first attempt; `callerContext` goes
   * to every attempt's `acquire`.
   */
  start(entry: Entry<K>, callerContext?: unknown): Cycle;
  /** Ends `cycle` at once, aborting its request and rejecting its waiters with `reason`. */
  cancel(entry: Entry<K>, cycle: Cycle, reason: unknown): void;
  /** Sets the refresh timer of a subscribed key, or starts its cycle when already due. */
  scheduleRefresh(entry: Entry<K>): void;
  stopRefreshTimer(entry: Entry<K>): void;
  /** Takes a token written by another holder of the shared cache between our own cycles. */
  adopt(entry: Entry<K>, acquired: AcquiredToken, usableUntil: number): void;
}

/**
 * Creates the cycles of a registry. `shared` acquires the keys that have a shared-cache key;
 * `forgetIfIdle` is the registry's rule for entries that hold nothing any longer.
 */
export function createAcquisitionCycles<K extends TokenKey>(
  context: RegistryContext<K>,
  shared: SharedAcquisition<K> | undefined,
  forgetIfIdle: (entry: Entry<K>) => void,
): AcquisitionCycles<K> {
  const { scheduler, random, policy, emit } = context;

  function start(entry: Entry<K>, callerContext?: unknown): Cycle {
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
      callerContext,
      attemptStartedAt: scheduler.now(),
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
    cycle.attemptStartedAt = scheduler.now();
    emit({ type: "acquire-start", keyId: entry.key.id, key: entry.key, attempt: cycle.attempt });
    let source: ObservableInput<AcquiredToken>;
    try {
      source =
        shared !== undefined && entry.sharedKey !== undefined
          ? shared.acquire(entry, entry.sharedKey, cycle.controller.signal, () =>
              retryDeadline(entry, cycle, scheduler.now()),
            )
          : context.acquire(entry.key, cycle.controller.signal, cycle.callerContext);
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
    // Deadlines on the deadline clock, anchored now: the token's remaining life as the wall
    // clock says it at receipt, counted from here on a clock that is not stepped back.
    const expiresAt = toDeadlineClock(context, expiresOnTimestamp);
    const served = shared?.servedFromCache(acquired);
    const usableUntil =
      served !== undefined ? served.usableUntil : expiresAt - forcedWindow(policy, now, expiresAt);
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
      served?.due === true ? Math.floor(now) : refreshAtOf(now, expiresAt, acquired, usableUntil);
    endCycle(entry, cycle);
    // The cycle's promise is fulfilled with this token just below: it is the cached one.
    const token = holdToken(entry, acquired, expiresAt, usableUntil, refreshAt, cycle.promise);
    const keyId = entry.key.id;
    // Event times on the wall clock, as the token's: the refresh time users see.
    const refreshAfterTimestamp = token.refreshAfterTimestamp as number;
    emit(
      served !== undefined
        ? {
            type: "shared-token",
            keyId,
            key: entry.key,
            expiresOnTimestamp,
            refreshAt: refreshAfterTimestamp,
          }
        : {
            type: "acquire-success",
            keyId,
            key: entry.key,
            attempt: cycle.attempt,
            durationMs: now - cycle.attemptStartedAt,
            expiresOnTimestamp,
            refreshAt: refreshAfterTimestamp,
          },
    );
    cycle.resolve(token);
    for (const subscriber of subscribersOf(entry)) subscriber.next(token);
    scheduleRefresh(entry);
    // A stored token served while already due (cold start): refresh it now, in the
    // background, even when only `get` callers hold it.
    if (served?.due === true && entry.cycle === undefined && !context.isClosed()) start(entry);
    forgetIfIdle(entry);
  }

  function adopt(entry: Entry<K>, acquired: AcquiredToken, usableUntil: number): void {
    const now = scheduler.now();
    const { expiresOnTimestamp } = acquired;
    const expiresAt = toDeadlineClock(context, expiresOnTimestamp);
    const refreshAt = refreshAtOf(now, expiresAt, acquired, usableUntil);
    const token = holdToken(entry, acquired, expiresAt, usableUntil, refreshAt, undefined);
    emit({
      type: "shared-token",
      keyId: entry.key.id,
      key: entry.key,
      expiresOnTimestamp,
      refreshAt: token.refreshAfterTimestamp as number,
    });
    for (const subscriber of subscribersOf(entry)) subscriber.next(token);
    scheduleRefresh(entry);
  }

  /** The server's refresh time of `acquired` on the deadline clock, if it gave one. */
  function refreshAfterOf(acquired: AcquiredToken): number | undefined {
    const { refreshAfterTimestamp } = acquired;
    return refreshAfterTimestamp === undefined
      ? undefined
      : toDeadlineClock(context, refreshAfterTimestamp);
  }

  /**
   * When a token received at `now` (expiring at `expiresAt`, both on the deadline clock) is
   * refreshed: never past its usable life, and a whole millisecond (jitter and half-life make
   * it fractional), rounded down so it stays inside the usable life.
   */
  function refreshAtOf(
    now: number,
    expiresAt: number,
    acquired: AcquiredToken,
    usableUntil: number,
  ): number {
    return Math.floor(
      Math.min(refreshTime(policy, now, expiresAt, refreshAfterOf(acquired), random), usableUntil),
    );
  }

  /**
   * Makes `acquired` the key's current token; `resolved` is a promise already (or about to
   * be) fulfilled with it, so the fast path allocates none. `expiresAt`, `usableUntil` and
   * `refreshAt` are on the deadline clock; the token users see has wall-clock times.
   */
  function holdToken(
    entry: Entry<K>,
    acquired: AcquiredToken,
    expiresAt: number,
    usableUntil: number,
    refreshAt: number,
    resolved: Promise<AccessToken> | undefined,
  ): AccessToken {
    const token: AccessToken = {
      token: acquired.token,
      expiresOnTimestamp: acquired.expiresOnTimestamp,
      // A whole millisecond on the wall clock (the monotonic clock is fractional).
      refreshAfterTimestamp: Math.floor(toWallClock(context, refreshAt)),
      tokenType: "Bearer",
    };
    entry.token = token;
    entry.expiresAt = expiresAt;
    entry.resolved = resolved ?? Promise.resolve(token);
    entry.refreshAt = refreshAt;
    context.hits.set(entry.slot, entry.resolved, refreshAt);
    entry.usableUntil = usableUntil;
    entry.blockedUntil = Number.NEGATIVE_INFINITY;
    entry.refused = false;
    entry.failure = undefined;
    return token;
  }

  function onFailure(entry: Entry<K>, cycle: Cycle, error: unknown): void {
    if (cycle.done) return;
    const now = scheduler.now();
    const failure = context.classify(error);
    // Short-lived keys serve no cached token: their callers wait for a fresh one.
    const usable = entry.key.shortLived !== true && hasUsableToken(entry, now);
    const failed = (retryInMs?: number): void => {
      const first = entry.failure === undefined;
      entry.failure = {
        error,
        transient: failure.transient,
        at: context.wallNow(),
        count: (entry.failure?.count ?? 0) + 1,
      };
      emit({
        type: "acquire-failure",
        keyId: entry.key.id,
        key: entry.key,
        attempt: cycle.attempt,
        durationMs: now - cycle.attemptStartedAt,
        error,
        transient: failure.transient,
        ...(retryInMs === undefined ? {} : { retryInMs }),
      });
      if (first && usable && entry.token !== undefined) {
        emit({
          type: "token-served-stale",
          keyId: entry.key.id,
          key: entry.key,
          expiresOnTimestamp: entry.token.expiresOnTimestamp,
          usableUntil: Math.floor(toWallClock(context, entry.usableUntil)),
          error,
          transient: failure.transient,
        });
      }
    };
    if (failure.transient) {
      const delay = retryDelay(policy, cycle.attempt, failure.retryAfterMs, random);
      const deadline = usable ? entry.usableUntil : retryDeadlineWithoutToken(entry, cycle);
      if (now + delay < deadline) {
        if (!usable) watchHeldExpiry(entry, cycle, error);
        failed(delay);
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
      failed(retryAt - now);
      endCycle(entry, cycle);
      entry.blockedUntil = retryAt;
      entry.refused = !failure.transient;
      cycle.resolve(entry.token as AccessToken);
      scheduleRefresh(entry);
      return;
    }
    failed();
    endCycle(entry, cycle);
    if (!hasUsableToken(entry, now)) {
      entry.token = undefined;
      entry.resolved = undefined;
      context.hits.clear(entry.slot);
    }
    cycle.reject(error);
    for (const subscriber of subscribersOf(entry)) subscriber.error(error);
    forgetIfIdle(entry);
  }

  /** How long transient failures are retried once no usable token is left. */
  function retryDeadlineWithoutToken(entry: Entry<K>, cycle: Cycle): number {
    return Math.max(cycle.startedAt, entry.usableUntil) + policy.retryWithoutTokenMs;
  }

  /** The last moment this cycle may still be waiting for a token (shared keys: a usable one). */
  function retryDeadline(entry: Entry<K>, cycle: Cycle, now: number): number {
    return hasUsableToken(entry, now) ? entry.usableUntil : retryDeadlineWithoutToken(entry, cycle);
  }

  /**
   * Subscribers still hold the last token while retries go on without a usable one: if it
   * expires before a fresh token arrives, they get the latest failure then, not after the
   * attempt in flight. `get` callers keep waiting for the cycle.
   */
  function watchHeldExpiry(entry: Entry<K>, cycle: Cycle, error: unknown): void {
    const held = entry.token;
    const expiresAt = entry.expiresAt;
    if (held === undefined || connectionCount(entry) === 0) return;
    cycle.expiryTimer?.unsubscribe();
    cycle.expiryTimer = scheduler.schedule(
      () => {
        cycle.expiryTimer = undefined;
        if (cycle.done || entry.token !== held) return;
        emit({ type: "token-expired", keyId: entry.key.id, key: entry.key, error });
        for (const subscriber of subscribersOf(entry)) subscriber.error(error);
      },
      // A millisecond early: at `expiresOnTimestamp` the token has already stopped working.
      clampDelay(expiresAt - 1 - scheduler.now()),
    );
  }

  function cancel(entry: Entry<K>, cycle: Cycle, reason: unknown): void {
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
      context.isClosed() ||
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
      start(entry);
      return;
    }
    entry.refreshTimer = scheduler.schedule(() => {
      entry.refreshTimer = undefined;
      // A delay longer than the timer maximum fires early: look again rather than refresh.
      scheduleRefresh(entry);
    }, clampDelay(delay));
  }

  return { start, cancel, scheduleRefresh, stopRefreshTimer, adopt };
}
