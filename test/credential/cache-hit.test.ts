/**
 * The cache hit of `getToken` (engine-credential.ts): a memo from scope strings to the
 * registry's hit slots. A slot goes to another key once its key is forgotten, so these tests
 * check what a user would see if that went wrong: a token of another scope, an expired
 * token, a hit after `close()`, a hit that ignores an aborted signal. Virtual time: the
 * wrapped source and the engine read one clock.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { CredentialUnavailableError as IdentityUnavailableError } from "@azure/identity";
import { fc } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { isAbortError, isCredentialUnavailableError, reactiveCredential } from "../../src/index.js";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { VirtualClock } from "../streams/harness.js";

const minute = 60_000;

/** A source that mints `<scope>#<n>` tokens of `lifetimeMs`, or refuses the scopes in `refused`. */
class ScopeSource implements TokenCredential {
  readonly refused = new Set<string>();
  readonly calls: string[] = [];
  lifetimeMs = 60 * minute;
  /** Every token minted: its scope and expiry. */
  readonly minted = new Map<string, { scope: string; expiresOnTimestamp: number }>();
  #count = 0;

  constructor(private readonly clock: VirtualClock) {}

  getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    const scope = typeof scopes === "string" ? scopes : scopes.join(" ");
    this.calls.push(scope);
    if (this.refused.has(scope)) {
      return Promise.reject(new IdentityUnavailableError(`no token for ${scope} here`));
    }
    this.#count += 1;
    const token = `${scope}#${this.#count}`;
    const expiresOnTimestamp = this.clock.now() + this.lifetimeMs;
    this.minted.set(token, { scope, expiresOnTimestamp });
    return Promise.resolve({ token, expiresOnTimestamp, tokenType: "Bearer" });
  }
}

function setUp(): {
  clock: VirtualClock;
  source: ScopeSource;
  credential: ReturnType<typeof reactiveCredential>;
} {
  const clock = new VirtualClock();
  const source = new ScopeSource(clock);
  const credential = reactiveCredential(source, { scheduler: clock });
  return { clock, source, credential };
}

const scopeOf = (i: number): string => `https://r${i}.example.com/.default`;

describe("the cache hit", () => {
  test("a forgotten scope never gets the token of the scope that took its slot", async () => {
    const { source, credential } = setUp();
    source.refused.add(scopeOf(0));
    // Scope 0 gets an entry (and a hit slot), is refused and forgotten: its slot is free.
    await expect(credential.getToken(scopeOf(0))).rejects.toBeInstanceOf(IdentityUnavailableError);
    // Scope 1 takes the slot scope 0 had.
    const other = await credential.getToken(scopeOf(1));
    expect(other.token).toBe(`${scopeOf(1)}#1`);
    // Scope 0 asks again: the source is asked again, and scope 1's token is not handed out.
    await expect(credential.getToken(scopeOf(0))).rejects.toBeInstanceOf(IdentityUnavailableError);
    source.refused.clear();
    expect((await credential.getToken(scopeOf(0))).token).toBe(`${scopeOf(0)}#2`);
    expect((await credential.getToken(scopeOf(1))).token).toBe(`${scopeOf(1)}#1`);
    expect(source.calls).toEqual([scopeOf(0), scopeOf(1), scopeOf(0), scopeOf(0)]);
    await credential.close();
  });

  test("a hit ignores a signal that is not aborted, and an aborted one rejects", async () => {
    const { source, credential } = setUp();
    const first = await credential.getToken(scopeOf(0));
    const controller = new AbortController();
    const hit = await credential.getToken(scopeOf(0), {
      abortSignal: controller.signal,
      requestOptions: { timeout: 1 },
      enableCae: false,
    });
    expect(hit.token).toBe(first.token);
    controller.abort();
    await expect(
      credential.getToken(scopeOf(0), { abortSignal: controller.signal }),
    ).rejects.toSatisfy(isAbortError);
    expect(source.calls).toHaveLength(1);
    await credential.close();
  });

  test("CAE and plain tokens of one scope are two hits, never each other's", async () => {
    const { source, credential } = setUp();
    const plain = await credential.getToken(scopeOf(0));
    const cae = await credential.getToken(scopeOf(0), { enableCae: true });
    expect(cae.token).not.toBe(plain.token);
    expect((await credential.getToken(scopeOf(0), { enableCae: true })).token).toBe(cae.token);
    expect((await credential.getToken(scopeOf(0))).token).toBe(plain.token);
    expect(source.calls).toHaveLength(2);
    await credential.close();
  });

  test("no hit after close()", async () => {
    const { credential } = setUp();
    await credential.getToken(scopeOf(0));
    await credential.close();
    await expect(credential.getToken(scopeOf(0))).rejects.toSatisfy(isCredentialUnavailableError);
  });

  test("a hit is due for refresh at its time: the next call refreshes, the token is still served", async () => {
    const { clock, source, credential } = setUp();
    const first = await credential.getToken(scopeOf(0));
    // A 60-minute token refreshes 5 minutes before expiry, less up to 10% jitter.
    await clock.advance(56 * minute);
    expect((await credential.getToken(scopeOf(0))).token).toBe(first.token);
    await clock.advance(0);
    expect(source.calls).toHaveLength(2);
    expect((await credential.getToken(scopeOf(0))).token).toBe(`${scopeOf(0)}#2`);
    await credential.close();
  });

  const operation = fc.oneof(
    fc.record({ kind: fc.constant("get" as const), scope: fc.nat(5) }),
    fc.record({ kind: fc.constant("refuse" as const), scope: fc.nat(5), on: fc.boolean() }),
    fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 90 * minute }),
    }),
    fc.record({ kind: fc.constant("lifetime" as const), minutes: fc.constantFrom(2, 10, 60) }),
  );

  test(`every token a call gets is its own scope's, and usable, whatever keys come and go ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([0, 1, 2, 3, 4, 5]),
        fc.array(operation, { maxLength: 60 }),
        async (refusedAtFirst, operations) => {
          const { clock, source, credential } = setUp();
          for (const i of refusedAtFirst) source.refused.add(scopeOf(i));
          try {
            for (const op of operations) {
              if (op.kind === "advance") await clock.advance(op.ms);
              else if (op.kind === "lifetime") source.lifetimeMs = op.minutes * minute;
              else if (op.kind === "refuse") {
                if (op.on) source.refused.add(scopeOf(op.scope));
                else source.refused.delete(scopeOf(op.scope));
              } else {
                const scope = scopeOf(op.scope);
                const settled = await credential.getToken(scope).then(
                  (token) => token,
                  (error: unknown) => error,
                );
                if (!("token" in (settled as object))) {
                  expect(settled).toBeInstanceOf(IdentityUnavailableError);
                  continue;
                }
                const token = settled as AccessToken;
                const minted = source.minted.get(token.token);
                expect(minted?.scope).toBe(scope);
                expect(token.expiresOnTimestamp).toBeGreaterThan(clock.now());
              }
            }
          } finally {
            await credential.close();
          }
        },
      ),
      { numRuns },
    );
  });
});
