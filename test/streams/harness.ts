/**
 * Virtual time for a Promise-based engine: a `SchedulerLike` clock that runs one due action
 * at a time and lets pending Promise callbacks settle between actions, and a fake token
 * source whose responses resolve from scheduled virtual-time actions.
 */
import { EMPTY, Subscription, type SchedulerAction, type SchedulerLike } from "rxjs";
import { createMemoryTokenStore } from "../../src/stores/index.js";
import type { AcquiredToken, SharedTokenCache, TokenKey } from "../../src/streams/index.js";

/** Lets every queued Promise callback run (setImmediate runs after the microtask queue). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Queued {
  at: number;
  seq: number;
  queued: boolean;
  run(): void;
}

class ClockAction<T> extends Subscription implements SchedulerAction<T>, Queued {
  at = 0;
  seq = 0;
  queued = false;
  constructor(
    private readonly clock: VirtualClock,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
    public state: T | undefined,
  ) {
    super();
    this.add(() => this.clock.remove(this));
  }
  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.clock.enqueue(this, delay);
    return this;
  }
  run(): void {
    this.work.call(this, this.state);
    if (!this.queued) this.unsubscribe();
  }
}

export class VirtualClock implements SchedulerLike {
  time = 0;
  private seq = 0;
  private readonly queue = new Set<Queued>();

  now(): number {
    return this.time;
  }

  schedule<T>(
    work: (this: SchedulerAction<T>, state?: T) => void,
    delay = 0,
    state?: T,
  ): Subscription {
    const action = new ClockAction<T>(this, work, state);
    this.enqueue(action, delay);
    return action;
  }

  enqueue(action: Queued, delay: number): void {
    action.at = this.time + Math.max(0, delay);
    action.seq = this.seq++;
    action.queued = true;
    this.queue.add(action);
  }

  remove(action: Queued): void {
    action.queued = false;
    this.queue.delete(action);
  }

  /** How many actions are scheduled (timers that would be armed). */
  get pending(): number {
    return this.queue.size;
  }

  /** Advances virtual time by `ms`, running each due action in order and settling Promises. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      let next: Queued | undefined;
      for (const action of this.queue) {
        if (
          action.at <= target &&
          (next === undefined ||
            action.at < next.at ||
            (action.at === next.at && action.seq < next.seq))
        ) {
          next = action;
        }
      }
      if (next === undefined) break;
      this.time = Math.max(this.time, next.at);
      this.queue.delete(next);
      next.queued = false;
      next.run();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

/** What the fake source answers to one request. */
export type Response =
  | {
      readonly kind: "token";
      readonly lifetimeMs: number;
      readonly refreshInMs?: number | undefined;
    }
  | { readonly kind: "transient"; readonly retryAfterMs?: number | undefined }
  | { readonly kind: "permanent" };

export class FakeError extends Error {
  constructor(
    readonly transient: boolean,
    readonly retryAfterMs: number | undefined,
    readonly keyId: string,
  ) {
    super(transient ? "temporarily_unavailable" : "invalid_client");
  }
}

export const classify = (
  error: unknown,
): { transient: boolean; retryAfterMs?: number | undefined } =>
  error instanceof FakeError
    ? { transient: error.transient, retryAfterMs: error.retryAfterMs }
    : { transient: false };

export interface Request {
  readonly keyId: string;
  readonly at: number;
  readonly signal: AbortSignal;
  settledAt: number | undefined;
}

/** A token source on the virtual clock: each request answers after `latencyMs`. */
export class FakeSource<K extends TokenKey = TokenKey> {
  readonly requests: Request[] = [];
  readonly inFlight = new Map<string, number>();
  maxInFlight = 0;
  private counter = 0;
  /** The answer to the next request; a queue of overrides takes precedence. */
  readonly script: Response[] = [];
  fallback: Response = { kind: "token", lifetimeMs: 3_600_000 };

  constructor(
    private readonly clock: VirtualClock,
    public latencyMs = 100,
  ) {}

  readonly acquire = (key: K, signal: AbortSignal): Promise<AcquiredToken> => {
    const request: Request = { keyId: key.id, at: this.clock.now(), signal, settledAt: undefined };
    this.requests.push(request);
    const now = (this.inFlight.get(key.id) ?? 0) + 1;
    this.inFlight.set(key.id, now);
    this.maxInFlight = Math.max(this.maxInFlight, now);
    const response = this.script.shift() ?? this.fallback;
    const serial = ++this.counter;
    return new Promise<AcquiredToken>((resolve, reject) => {
      const done = (): void => {
        request.settledAt = this.clock.now();
        this.inFlight.set(key.id, (this.inFlight.get(key.id) ?? 1) - 1);
      };
      const timer = this.clock.schedule(() => {
        signal.removeEventListener("abort", onAbort);
        done();
        const t = this.clock.now();
        if (response.kind === "token") {
          resolve({
            token: `${key.id}#${serial}`,
            expiresOnTimestamp: t + response.lifetimeMs,
            refreshAfterTimestamp:
              response.refreshInMs === undefined ? undefined : t + response.refreshInMs,
          });
        } else {
          reject(
            new FakeError(
              response.kind === "transient",
              response.kind === "transient" ? response.retryAfterMs : undefined,
              key.id,
            ),
          );
        }
      }, this.latencyMs);
      const onAbort = (): void => {
        timer.unsubscribe();
        done();
        reject(new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  };

  countFor(keyId: string): number {
    return this.requests.filter((r) => r.keyId === keyId).length;
  }

  get totalInFlight(): number {
    let sum = 0;
    for (const n of this.inFlight.values()) sum += n;
    return sum;
  }
}

/**
 * A shared cache on one in-memory store on `clock` (entries and leases expire on it), for
 * registries standing for the processes of a fleet. `watch: false` delivers no update, as
 * when every one was lost on the way.
 */
export function memorySharedCache(
  clock: VirtualClock,
  options: { readonly watch?: boolean } = {},
): SharedTokenCache<TokenKey> {
  const store = createMemoryTokenStore({ now: () => clock.now() });
  return {
    keyOf: (k) => `store:${k.id}`,
    read: (k) => store.read(k),
    write: (k, entry) => store.write(k, entry),
    lease: (k, ttlMs) => store.lease!(k, ttlMs),
    watch: () => (options.watch === false ? EMPTY : store.watch!()),
  };
}
