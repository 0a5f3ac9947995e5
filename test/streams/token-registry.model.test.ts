import type { AccessToken } from "@azure/core-auth";
import { fc } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { isCredentialUnavailableError } from "../../src/errors/index.js";
import {
  DEFAULT_REFRESH_POLICY,
  createTokenRegistry,
  forcedWindow,
  type TokenKey,
  type TokenRegistry,
} from "../../src/streams/index.js";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { FakeSource, VirtualClock, classify } from "./harness.js";

const P = DEFAULT_REFRESH_POLICY;
const KEYS: TokenKey[] = [{ id: "k0" }, { id: "k1" }];

/** The simple model: what a user can know without looking inside. */
interface Model {
  closed: boolean;
  subscribers: number[];
  /** Whether any failure was ever injected (errors are only allowed after one). */
  failed: boolean;
}

interface Sub {
  readonly key: number;
  subscription: { unsubscribe(): void };
  last: AccessToken | undefined;
  errored: boolean;
  completed: boolean;
}

class Real {
  readonly clock = new VirtualClock();
  readonly source = new FakeSource(this.clock);
  readonly issued = new Map<string, { issuedAt: number; expiresOn: number }>();
  readonly registry: TokenRegistry<TokenKey>;
  readonly subs: Sub[] = [];
  readonly violations: string[] = [];
  readonly errors: unknown[] = [];

  constructor(seed: number) {
    let s = seed >>> 0;
    const random = (): number => {
      s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
      return s / 4_294_967_296;
    };
    const acquire = this.source.acquire;
    this.registry = createTokenRegistry<TokenKey>({
      acquire: async (key, signal) => {
        const token = await acquire(key, signal);
        this.issued.set(token.token, {
          issuedAt: this.clock.now(),
          expiresOn: token.expiresOnTimestamp,
        });
        return token;
      },
      classify,
      scheduler: this.clock,
      random,
    });
  }

  usable(token: AccessToken): boolean {
    const info = this.issued.get(token.token);
    if (info === undefined) return false;
    return this.clock.now() < info.expiresOn - forcedWindow(P, info.issuedAt, info.expiresOn);
  }

  deliver(key: number, token: AccessToken): void {
    if (!token.token.startsWith(`${KEYS[key]!.id}#`))
      this.violations.push(`cross-key ${token.token}`);
    if (!this.usable(token)) this.violations.push(`stale ${token.token} at ${this.clock.now()}`);
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

const check = (model: Model, real: Real): void => {
  expect(real.violations).toEqual([]);
  expect(real.source.maxInFlight).toBeLessThanOrEqual(1);
  if (!model.failed) expect(real.errors).toEqual([]);
};

class Subscribe implements Cmd {
  constructor(readonly key: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const record: Sub = {
      key: this.key,
      last: undefined,
      errored: false,
      completed: false,
      subscription: { unsubscribe: () => undefined },
    };
    const errors: unknown[] = [];
    record.subscription = real.registry.stream(KEYS[this.key]!).subscribe({
      next: (t) => {
        record.last = t;
        real.deliver(this.key, t);
      },
      error: (e: unknown) => {
        record.errored = true;
        errors.push(e);
        real.errors.push(e);
      },
      complete: () => {
        record.completed = true;
      },
    });
    if (model.closed) {
      expect(errors[0]).toSatisfy(isCredentialUnavailableError);
      real.errors.pop();
      return;
    }
    real.subs.push(record);
    model.subscribers[this.key]! += 1;
    await real.clock.advance(0);
    check(model, real);
  }
  toString = (): string => `subscribe(${this.key})`;
}

class Unsubscribe implements Cmd {
  check = (_model: Readonly<Model>): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    const sub = real.subs.shift();
    if (sub === undefined) return;
    sub.subscription.unsubscribe();
    model.subscribers[sub.key]! -= 1;
    await real.clock.advance(0);
    check(model, real);
  }
  toString = (): string => "unsubscribe";
}

class Get implements Cmd {
  constructor(readonly key: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    let outcome: { token?: AccessToken; error?: unknown } | undefined;
    void real.registry.get(KEYS[this.key]!).then(
      (token) => {
        outcome = { token };
        real.deliver(this.key, token);
      },
      (error: unknown) => {
        outcome = { error };
      },
    );
    await real.clock.advance(0);
    if (model.closed) expect(outcome?.error).toSatisfy(isCredentialUnavailableError);
    check(model, real);
  }
  toString = (): string => `get(${this.key})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.clock.advance(this.ms);
    check(model, real);
    if (!model.failed && !model.closed && this.ms >= 200) {
      // Subscribed keys always hold a usable token when nothing fails.
      for (const sub of real.subs) {
        if (sub.errored) continue;
        expect(sub.last !== undefined && real.usable(sub.last)).toBe(true);
      }
    }
  }
  toString = (): string => `advance(${this.ms})`;
}

class FailNext implements Cmd {
  constructor(readonly transient: boolean) {}
  check = (): boolean => true;
  run(model: Model, real: Real): Promise<void> {
    model.failed = true;
    real.source.script.push(this.transient ? { kind: "transient" } : { kind: "permanent" });
    return Promise.resolve();
  }
  toString = (): string => `failNext(${this.transient ? "transient" : "permanent"})`;
}

class Close implements Cmd {
  check = (model: Readonly<Model>): boolean => !model.closed;
  async run(model: Model, real: Real): Promise<void> {
    await real.registry.close();
    model.closed = true;
    await real.clock.advance(0);
    expect(real.clock.pending).toBe(0);
    expect(real.source.totalInFlight).toBe(0);
    // Every stream still subscribed completes (one that errored earlier has ended already).
    for (const sub of real.subs) expect(sub.completed || sub.errored).toBe(true);
    check(model, real);
  }
  toString = (): string => "close";
}

const commands = [
  fc.nat(1).map((k): Cmd => new Subscribe(k)),
  fc.constant<Cmd>(new Unsubscribe()),
  fc.nat(1).map((k): Cmd => new Get(k)),
  fc
    .oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 2 * 3_600_000 }))
    .map((ms): Cmd => new Advance(ms)),
  fc.boolean().map((t): Cmd => new FailNext(t)),
  fc.constant<Cmd>(new Close()),
];

describe("createTokenRegistry model", () => {
  it(`matches the model over subscribe, unsubscribe, get, advance, fail-next and close ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.commands(commands, { maxCommands: 30 }),
        async (seed, cmds) => {
          const real = new Real(seed);
          const model: Model = { closed: false, subscribers: [0, 0], failed: false };
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          await real.registry.close();
          await real.clock.advance(0);
          expect(real.clock.pending).toBe(0);
          expect(real.source.totalInFlight).toBe(0);
        },
      ),
      { numRuns },
    );
  });
});
