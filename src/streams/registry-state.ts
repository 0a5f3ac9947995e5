/**
 * What the registry keeps per key (its token, the acquisition cycle in flight, its stream
 * subscribers, its refresh timer) and what the registry's parts share (the clock, the policy,
 * the event sink). Plain state and the reads every part makes of it; no behaviour.
 */
import type { HitTable } from "./hit-table.js";
import type { AccessToken } from "@azure/core-auth";
import type { SchedulerLike, Subscriber, Subscription } from "rxjs";
import { CredentialUnavailableError } from "../errors/index.js";
import type { RefreshPolicyOptions } from "./refresh-policy.js";
import type { Acquire, FailureClass, KeyFailure, RegistryEvent, TokenKey } from "./types.js";

/** One acquisition with its retries: what `get` callers join. */
export interface Cycle {
  readonly controller: AbortController;
  readonly promise: Promise<AccessToken>;
  readonly resolve: (token: AccessToken) => void;
  readonly reject: (error: unknown) => void;
  readonly startedAt: number;
  /** What the `get` caller that started this cycle passed for `acquire` (see `Acquire`). */
  readonly callerContext: unknown;
  /** When the current attempt started. */
  attemptStartedAt: number;
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

/** The registry's state for one key. */
export interface Entry<K extends TokenKey> {
  readonly key: K;
  /** The key in the shared cache, or `undefined` when this key is not shared. */
  readonly sharedKey: string | undefined;
  /** Where the registry's {@link HitTable} keeps this key's cache hit (`NO_SLOT` for claims). */
  readonly slot: number;
  token: AccessToken | undefined;
  /**
   * A promise fulfilled with `token`, cached so the fast path allocates nothing: the promise of
   * the cycle that acquired it (no second promise per key).
   */
  resolved: Promise<AccessToken> | undefined;
  /**
   * The deadlines, on the registry's deadline clock (`scheduler.now()`, monotonic in real
   * time), anchored when the token was received: `token.expiresOnTimestamp` is on the wall
   * clock, for users.
   */
  expiresAt: number;
  refreshAt: number;
  usableUntil: number;
  /** After a failure while a usable token is served, no new attempt before this time. */
  blockedUntil: number;
  /**
   * Whether `blockedUntil` is the back-off after a permanent refusal (a wrong or expired
   * secret, say), which a change of the acquirer's input can end early: see
   * {@link TokenRegistry.retryRefused}.
   */
  refused: boolean;
  cycle: Cycle | undefined;
  /** The latest failure since the last token (one field, so a healthy key pays one slot). */
  failure: KeyFailure | undefined;
  /**
   * The stream subscribers of this key, created with the first one: most keys are only ever
   * read through `get`, and an empty `Set` costs about 150 bytes per key.
   */
  connections: Set<Subscriber<AccessToken>> | undefined;
  refreshTimer: Subscription | undefined;
}

/** What the registry, its cycles and its shared-cache protocol are built with. */
export interface RegistryContext<K extends TokenKey> {
  readonly acquire: Acquire<K>;
  /** The acquirer's classifier; a throwing one makes the failure permanent. */
  readonly classify: (error: unknown) => FailureClass;
  /** Timers, and `now()`: the deadline clock (monotonic in real time, see `engine-clock.ts`). */
  readonly scheduler: SchedulerLike;
  /** The clock token timestamps are on (epoch milliseconds in real time). */
  readonly wallNow: () => number;
  readonly random: () => number;
  readonly policy: Readonly<RefreshPolicyOptions>;
  /** Reports an event; a throwing listener never breaks token delivery. */
  readonly emit: (event: RegistryEvent<K>) => void;
  /** Whether `close()` was called. */
  readonly isClosed: () => boolean;
  /** What the cache hits read: kept in step with every entry's `resolved` and `refreshAt`. */
  readonly hits: HitTable<K>;
}

export const noop = (): void => undefined;

export function closedError(): CredentialUnavailableError {
  return new CredentialUnavailableError(
    "The credential was closed: it no longer gets tokens. Create a new credential to get tokens again.",
  );
}

export function newEntry<K extends TokenKey>(
  key: K,
  sharedKey: string | undefined,
  slot: number,
): Entry<K> {
  return {
    key,
    sharedKey,
    slot,
    token: undefined,
    resolved: undefined,
    expiresAt: Number.NEGATIVE_INFINITY,
    refreshAt: Number.POSITIVE_INFINITY,
    usableUntil: Number.NEGATIVE_INFINITY,
    blockedUntil: Number.NEGATIVE_INFINITY,
    refused: false,
    cycle: undefined,
    failure: undefined,
    connections: undefined,
    refreshTimer: undefined,
  };
}

export function connectionCount(entry: Entry<TokenKey>): number {
  return entry.connections?.size ?? 0;
}

/** Delivers to a copy of the subscribers: a subscriber may disconnect while being called. */
export function subscribersOf(entry: Entry<TokenKey>): Subscriber<AccessToken>[] {
  return entry.connections === undefined ? [] : [...entry.connections];
}

/** A wall-clock time (a token's) on the deadline clock, as seen now. */
export function toDeadlineClock(
  context: Pick<RegistryContext<TokenKey>, "scheduler" | "wallNow">,
  wallTime: number,
): number {
  return wallTime + (context.scheduler.now() - context.wallNow());
}

/** A deadline-clock time on the wall clock, as seen now (for timestamps users see). */
export function toWallClock(
  context: Pick<RegistryContext<TokenKey>, "scheduler" | "wallNow">,
  deadline: number,
): number {
  return deadline + (context.wallNow() - context.scheduler.now());
}

export function hasUsableToken(entry: Entry<TokenKey>, now: number): boolean {
  return entry.token !== undefined && now < entry.usableUntil;
}
