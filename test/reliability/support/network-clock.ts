/**
 * Virtual time for tests that do real HTTPS: a `SchedulerLike` whose clock moves only when
 * the test advances it, and only while no HTTP request is on the wire. Before each due
 * action runs, it waits for every outgoing request of this process to close (Node's
 * `http.client.request.start` diagnostics channel sees them all), then lets the Promise
 * chains behind them settle. So an outage, a backoff or a request timeout of minutes takes
 * milliseconds, and the order of events is what it would be on a real clock.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { Subscription, type SchedulerAction, type SchedulerLike } from "rxjs";

const settleOnce = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Lets queued Promise callbacks (and what they chain) run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await settleOnce();
}

class ClockAction<T> extends Subscription implements SchedulerAction<T> {
  at = 0;
  seq = 0;
  queued = false;
  constructor(
    private readonly clock: NetworkClock,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
    public state: T | undefined,
  ) {
    super();
    this.add(() => this.clock.remove(this as ClockAction<unknown>));
  }
  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.clock.enqueue(this as ClockAction<unknown>, delay);
    return this;
  }
  run(): void {
    this.work.call(this, this.state);
    if (!this.queued) this.unsubscribe();
  }
}

/** Options of {@link NetworkClock}. */
export interface NetworkClockOptions {
  /** Epoch milliseconds the clock starts at. */
  readonly start: number;
  /**
   * How many token requests the server has received so far (`emulator.requests.length`).
   * With {@link NetworkClock.hangingTokenRequests} set, a token request the server has
   * received and holds does not stop the clock: only the client's timeout can end it.
   */
  readonly arrived: () => number;
}

/** See the module comment. */
export class NetworkClock implements SchedulerLike {
  time: number;
  /** Set while the server holds token requests without answering (a hang fault). */
  hangingTokenRequests = false;
  private seq = 0;
  private readonly queue = new Set<ClockAction<unknown>>();
  private readonly open = new Set<ClientRequest>();
  private readonly held = new WeakSet<ClientRequest>();
  private tokenPostsStarted = 0;
  private wake: (() => void) | undefined;
  private readonly onStart = (message: unknown): void => {
    const request = (message as { request: ClientRequest }).request;
    this.open.add(request);
    if (request.method === "POST" && request.path.includes("/oauth2/v2.0/token")) {
      this.tokenPostsStarted += 1;
    }
    request.once("close", () => {
      this.open.delete(request);
      this.wake?.();
    });
  };

  constructor(private readonly options: NetworkClockOptions) {
    this.time = options.start;
    subscribe("http.client.request.start", this.onStart);
  }

  /** Stops watching requests. */
  dispose(): void {
    unsubscribe("http.client.request.start", this.onStart);
  }

  now(): number {
    return this.time;
  }

  schedule<T>(
    work: (this: SchedulerAction<T>, state?: T) => void,
    delay = 0,
    state?: T,
  ): Subscription {
    const action = new ClockAction<T>(this, work, state);
    this.enqueue(action as ClockAction<unknown>, delay);
    return action;
  }

  enqueue(action: ClockAction<unknown>, delay: number): void {
    action.at = this.time + Math.max(0, delay);
    action.seq = this.seq++;
    action.queued = true;
    this.queue.add(action);
  }

  remove(action: ClockAction<unknown>): void {
    action.queued = false;
    this.queue.delete(action);
  }

  /** Timers armed on this clock. */
  get pending(): number {
    return this.queue.size;
  }

  /** Outgoing HTTP requests not yet closed. */
  get inFlight(): number {
    return this.open.size;
  }

  private idleNow(): boolean {
    if (this.hangingTokenRequests && this.options.arrived() >= this.tokenPostsStarted) {
      // Every token POST on the wire has reached the server, which holds it: remember them,
      // they stay held after the fault ends, until the client's time limit ends them.
      for (const request of this.open) {
        if (request.method === "POST" && request.path.includes("/oauth2/v2.0/token")) {
          this.held.add(request);
        }
      }
    }
    for (const request of this.open) if (!this.held.has(request)) return false;
    return true;
  }

  /** Waits until no request is on the wire (or only held ones) and Promises settled. */
  async idle(): Promise<void> {
    for (let spins = 0; ; spins += 1) {
      await settle();
      if (this.idleNow()) {
        await settle();
        if (this.idleNow()) return;
      }
      if (spins > 1_000_000) throw new Error(`network never went idle (${this.open.size} open)`);
      // Woken by a request closing, or re-checked on the next turn (a held request arriving).
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setImmediate(resolve);
      });
      this.wake = undefined;
    }
  }

  private next(limit: number): ClockAction<unknown> | undefined {
    let next: ClockAction<unknown> | undefined;
    for (const action of this.queue) {
      if (
        action.at <= limit &&
        (next === undefined ||
          action.at < next.at ||
          (action.at === next.at && action.seq < next.seq))
      ) {
        next = action;
      }
    }
    return next;
  }

  /** Advances by `ms`, running every due action in order, each once the network is idle. */
  async advance(ms: number): Promise<void> {
    await this.advanceUntil(() => false, ms);
  }

  /**
   * Advances until `done()` holds (checked whenever the network is idle) or `ms` have
   * passed; returns whether `done()` held.
   */
  async advanceUntil(done: () => boolean, ms: number): Promise<boolean> {
    const target = this.time + ms;
    for (;;) {
      await this.idle();
      if (done()) return true;
      const next = this.next(target);
      if (next === undefined) break;
      this.time = Math.max(this.time, next.at);
      this.queue.delete(next);
      next.queued = false;
      next.run();
    }
    this.time = target;
    await this.idle();
    return done();
  }
}
