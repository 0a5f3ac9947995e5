/**
 * `reactiveCredential` over a user's own `TokenCredential` (the kind of source it exists
 * for, besides Azure Identity's): single-flight, cache, the source's refresh hint, retries
 * of transient failures by classification, errors passed through untouched, what reaches
 * the source as `GetTokenOptions`, aborts, stores, validation and `close`. Timing runs on a
 * virtual clock that the source reads too. The real `@azure/identity` credentials are in
 * `test/interop/identity-credentials.test.ts`.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import {
  AuthenticationError as IdentityAuthenticationError,
  CredentialUnavailableError as IdentityUnavailableError,
} from "@azure/identity";
import { firstValueFrom, toArray } from "rxjs";
import { describe, expect, test } from "vitest";
import {
  createMemoryTokenStore,
  isAbortError,
  isAuthenticationError,
  isCredentialUnavailableError,
  isInvalidArgumentError,
  reactiveCredential,
  type TokenStore,
} from "../../src/index.js";
import { settle, VirtualClock } from "../streams/harness.js";

const scope = "https://vault.azure.net/.default";
const hour = 3_600_000;

interface Call {
  readonly scopes: readonly string[];
  readonly options: GetTokenOptions | undefined;
  readonly at: number;
}

type Answer = AccessToken | null | Error | ((call: Call) => AccessToken | null | Error);

/**
 * A user's own `TokenCredential` on the virtual clock: answers from `script` in order (the
 * last one repeats), after `delayMs` of virtual time, and records every call.
 */
class ScriptedSource implements TokenCredential {
  readonly calls: Call[] = [];
  readonly script: Answer[] = [];
  delayMs = 0;
  #issued = 0;

  constructor(private readonly clock: VirtualClock) {}

  token(lifetimeMs = hour, refreshAfterMs?: number): AccessToken {
    this.#issued += 1;
    const now = this.clock.now();
    return {
      token: `token-${this.#issued}`,
      expiresOnTimestamp: now + lifetimeMs,
      ...(refreshAfterMs === undefined ? {} : { refreshAfterTimestamp: now + refreshAfterMs }),
      tokenType: "Bearer",
    };
  }

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const call: Call = {
      scopes: typeof scopes === "string" ? [scopes] : scopes,
      options,
      at: this.clock.now(),
    };
    this.calls.push(call);
    const next = this.script.length > 1 ? this.script.shift() : this.script[0];
    const answer = (): AccessToken | null | Error => {
      if (next === undefined) return this.token();
      return typeof next === "function" ? next(call) : next;
    };
    return new Promise((resolve, reject) => {
      const deliver = (): void => {
        const value = answer();
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      if (this.delayMs === 0) deliver();
      else this.clock.schedule(deliver, this.delayMs);
    });
  }
}

function setup(options: Parameters<typeof reactiveCredential>[1] = {}) {
  const clock = new VirtualClock();
  const source = new ScriptedSource(clock);
  const credential = reactiveCredential(source, { scheduler: clock, ...options });
  return { clock, source, credential };
}

describe("single-flight and cache", () => {
  test("10,000 concurrent cold callers make one call of the source; a cache hit makes none", async () => {
    const { clock, source, credential } = setup();
    source.delayMs = 30;

    const callers = Array.from({ length: 10_000 }, () => credential.getToken(scope));
    await clock.advance(30);
    const tokens = await Promise.all(callers);
    expect(source.calls).toHaveLength(1);
    const hit = await credential.getToken(scope);

    expect(new Set(tokens.map((token) => token.token))).toEqual(new Set(["token-1"]));
    expect(hit.token).toBe("token-1");
    expect(source.calls).toHaveLength(1);
    await credential.close();
  });

  test("the source's refreshAfterTimestamp is the refresh time of a token$ subscriber", async () => {
    const { clock, source, credential } = setup();
    // Good for an hour: the default rule alone would refresh 5 minutes before expiry.
    source.script.push(() => source.token(hour, 60_000));
    const seen: string[] = [];

    const subscription = credential.token$(scope).subscribe((token) => seen.push(token.token));
    await clock.advance(0);
    await clock.advance(50_000);
    const beforeHint = source.calls.length;
    await clock.advance(10_001);

    expect(beforeHint).toBe(1);
    expect(source.calls).toHaveLength(2);
    expect(seen).toEqual(["token-1", "token-2"]);
    subscription.unsubscribe();
    await credential.close();
  });
});

describe("what reaches the source", () => {
  test("tenantId, claims and enableCae as GetTokenOptions, with a signal of its own", async () => {
    const { source, credential } = setup();
    const claims = JSON.stringify({ access_token: { nbf: { essential: true, value: "1" } } });
    const callerSignal = new AbortController().signal;

    await credential.getToken([scope], {
      tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
      claims,
      enableCae: true,
      abortSignal: callerSignal,
    });

    const [call] = source.calls;
    expect(call?.scopes).toEqual([scope]);
    expect(call?.options).toMatchObject({
      tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
      claims,
      enableCae: true,
    });
    expect(call?.options?.abortSignal).toBeInstanceOf(AbortSignal);
    expect(call?.options?.abortSignal).not.toBe(callerSignal);
    await credential.close();
  });

  test("a plain call sends no tenant, claims or CAE", async () => {
    const { source, credential } = setup();

    await credential.getToken(scope);

    expect(Object.keys(source.calls[0]?.options ?? {})).toEqual(["abortSignal"]);
    await credential.close();
  });

  test("claims keys are short-lived: every claims request calls the source", async () => {
    const { source, credential } = setup();
    const claims = JSON.stringify({ access_token: { acrs: { essential: true, value: "c1" } } });

    await credential.getToken(scope, { claims });
    await credential.getToken(scope, { claims });
    await credential.getToken(scope);
    await credential.getToken(scope);

    expect(source.calls.map((call) => call.options?.claims)).toEqual([claims, claims, undefined]);
    await credential.close();
  });

  test("one caller aborting does not abort the call others wait for; the last one does", async () => {
    const { clock, source, credential } = setup();
    source.delayMs = 1_000;
    const first = new AbortController();
    const second = new AbortController();

    const quitter = credential.getToken(scope, { abortSignal: first.signal });
    const stayer = credential.getToken(scope, { abortSignal: second.signal });
    await clock.advance(10);
    first.abort();
    const quitterError = await quitter.catch((error: unknown) => error);
    const sourceSignal = source.calls[0]?.options?.abortSignal;
    const abortedAfterFirst = sourceSignal?.aborted;
    await clock.advance(1_000);

    expect(isAbortError(quitterError)).toBe(true);
    expect(abortedAfterFirst).toBe(false);
    expect((await stayer).token).toBe("token-1");
    expect(source.calls).toHaveLength(1);

    const scope2 = "https://storage.azure.com/.default";
    const alone = new AbortController();
    const lone = credential.getToken(scope2, { abortSignal: alone.signal });
    await clock.advance(10);
    alone.abort();
    await lone.catch(() => undefined);
    expect(source.calls[1]?.options?.abortSignal?.aborted).toBe(true);
    await credential.close();
  });
});

describe("errors of the source", () => {
  test("CredentialUnavailableError is permanent and passes through as the same object", async () => {
    const { clock, source, credential } = setup();
    const unavailable = new IdentityUnavailableError(
      "ManagedIdentityCredential: no managed identity endpoint found.",
    );
    source.script.push(unavailable);

    const error = await credential.getToken(scope).catch((caught: unknown) => caught);
    await clock.advance(30_000);

    expect(error).toBe(unavailable);
    expect(error).toMatchObject({
      name: "CredentialUnavailableError",
      message: "ManagedIdentityCredential: no managed identity endpoint found.",
    });
    expect(source.calls).toHaveLength(1);
    await credential.close();
  });

  test.each([
    ...[500, 503, 429, 408].map(
      (status) =>
        [
          `AuthenticationError with status ${status}`,
          () =>
            new IdentityAuthenticationError(status, {
              error: "temporarily_unavailable",
              error_description: "busy",
            }),
        ] as const,
    ),
    [
      "a network failure before any response (ECONNRESET)",
      () => Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
    ] as const,
  ])("%s is retried; the caller gets the token", async (_name, failure) => {
    const { clock, source, credential } = setup();
    source.script.push(failure(), source.token());

    const pending = credential.getToken(scope);
    await clock.advance(20_000);

    expect((await pending).token).toBe("token-1");
    expect(source.calls).toHaveLength(2);
    await credential.close();
  });

  test.each([400, 401, 403])(
    "AuthenticationError with status %i is permanent and passes through as the same object",
    async (status) => {
      const { clock, source, credential } = setup();
      const refused = new IdentityAuthenticationError(status, {
        error: "invalid_client",
        error_description: "AADSTS7000215: Invalid client secret provided.",
      });
      source.script.push(refused);

      const error = await credential.getToken(scope).catch((caught: unknown) => caught);
      await clock.advance(20_000);

      expect(error).toBe(refused);
      expect(error).toMatchObject({ name: "AuthenticationError", statusCode: status });
      expect(source.calls).toHaveLength(1);
      await credential.close();
    },
  );

  test("an unknown error is permanent and passes through", async () => {
    const { clock, source, credential } = setup();
    const bug = new RangeError("the source has a bug");
    source.script.push(bug);

    const error = await credential.getToken(scope).catch((caught: unknown) => caught);
    await clock.advance(20_000);

    expect(error).toBe(bug);
    expect(source.calls).toHaveLength(1);
    await credential.close();
  });

  test("a transient failure while a usable token is held reaches no token$ subscriber", async () => {
    const { clock, source, credential } = setup();
    source.script.push(
      () => source.token(hour, 60_000),
      new IdentityAuthenticationError(503, { error: "temporarily_unavailable" }),
      () => source.token(hour, 60_000),
    );
    const seen: string[] = [];
    const errors: unknown[] = [];

    const subscription = credential.token$(scope).subscribe({
      next: (token) => seen.push(token.token),
      error: (error: unknown) => errors.push(error),
    });
    await clock.advance(0);
    // The refresh (54-60 s) fails, its retry succeeds; the next refresh is after 100 s.
    await clock.advance(90_000);

    expect(errors).toEqual([]);
    expect(seen).toEqual(["token-1", "token-2"]);
    expect(source.calls).toHaveLength(3);
    subscription.unsubscribe();
    await credential.close();
  });

  test("a null answer is a CredentialUnavailableError; an expired token is refused", async () => {
    const { clock, source, credential } = setup();
    source.script.push(null, () => ({
      token: "stale",
      expiresOnTimestamp: clock.now() - 1,
      tokenType: "Bearer",
    }));

    const nothing = await credential.getToken(scope).catch((caught: unknown) => caught);
    const expired = await credential
      .getToken("https://storage.azure.com/.default")
      .catch((caught: unknown) => caught);

    expect(isCredentialUnavailableError(nothing)).toBe(true);
    expect((nothing as Error).message).toContain("returned no token");
    expect(isAuthenticationError(expired)).toBe(true);
    expect((expired as Error).message).toContain("expiresOnTimestamp");
    await credential.close();
  });
});

describe("bad input fails typed before the source is called", () => {
  test.each([
    ["a scope with a space", "https://vault.azure.net/.default extra", {}],
    ["an empty scope list", [], {}],
    ["a tenant that climbs the path", scope, { tenantId: "../evil" }],
    ["claims that are not a JSON object", scope, { claims: "[1]" }],
  ] as const)("%s", async (_name, scopes, options) => {
    const { source, credential } = setup();

    const error = await credential
      .getToken(scopes as string | string[], options)
      .catch((caught: unknown) => caught);
    const streamed = await firstValueFrom(credential.token$(scopes as string, options)).catch(
      (caught: unknown) => caught,
    );

    expect(isInvalidArgumentError(error)).toBe(true);
    expect(isInvalidArgumentError(streamed)).toBe(true);
    expect(source.calls).toHaveLength(0);
    await credential.close();
  });

  test("a source that is not a TokenCredential", () => {
    expect(() => reactiveCredential({} as TokenCredential)).toThrow(
      /source must be a TokenCredential/,
    );
    expect(() => reactiveCredential(null as unknown as TokenCredential)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }) as Error,
    );
  });

  test("options: tokenStore without credentialId, a bad credentialId, a bad refresh knob", () => {
    const clock = new VirtualClock();
    const source = new ScriptedSource(clock);
    const store = createMemoryTokenStore();

    expect(() => reactiveCredential(source, { tokenStore: store })).toThrow(
      expect.objectContaining({
        name: "InvalidArgumentError",
        message: expect.stringContaining("tokenStore needs a credentialId") as string,
      }) as Error,
    );
    expect(() => reactiveCredential(source, { tokenStore: store, credentialId: " " })).toThrow(
      /credentialId must be a non-empty string/,
    );
    expect(() => reactiveCredential(source, { refresh: { jitterRatio: 2 } })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }) as Error,
    );
    expect(() => reactiveCredential(source, { scheduler: {} as never, credentialId: "x" })).toThrow(
      /scheduler must be an rxjs SchedulerLike/,
    );
    expect(() => reactiveCredential(source, "fast" as never)).toThrow(/options must be an object/);
    expect(source.calls).toHaveLength(0);
  });
});

describe("token stores", () => {
  test("credentials with one credentialId share tokens through the store; another id does not", async () => {
    const clock = new VirtualClock();
    const store: TokenStore = createMemoryTokenStore({ now: () => clock.now() });
    const first = new ScriptedSource(clock);
    const second = new ScriptedSource(clock);
    const other = new ScriptedSource(clock);
    const options = { scheduler: clock, tokenStore: store };
    const a = reactiveCredential(first, { ...options, credentialId: "orders/managed-identity" });
    const b = reactiveCredential(second, { ...options, credentialId: "orders/managed-identity" });
    const c = reactiveCredential(other, { ...options, credentialId: "billing/managed-identity" });

    const fromA = await a.getToken(scope);
    const fromB = await b.getToken(scope);
    const fromC = await c.getToken(scope);

    expect(fromB.token).toBe(fromA.token);
    expect(second.calls).toHaveLength(0);
    expect(other.calls).toHaveLength(1);
    expect(fromC.token).toBe("token-1");
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});

describe("close", () => {
  test("completes token$, later calls reject with CredentialUnavailableError", async () => {
    const { clock, credential } = setup();
    const stream = credential.token$(scope).pipe(toArray());
    const collected = firstValueFrom(stream);
    await clock.advance(0);

    await credential.close();
    await settle();

    expect((await collected).map((token) => token.token)).toEqual(["token-1"]);
    const error = await credential.getToken(scope).catch((caught: unknown) => caught);
    expect(isCredentialUnavailableError(error)).toBe(true);
  });

  test("JSON.stringify and util.inspect show nothing of the source", async () => {
    const clock = new VirtualClock();
    const source = Object.assign(new ScriptedSource(clock), { secret: "CANARY-reactive-5ecret" });
    const credential = reactiveCredential(source, { scheduler: clock });
    const { inspect } = await import("node:util");

    expect(JSON.stringify(credential)).not.toContain("CANARY");
    expect(inspect(credential, { depth: 5, showHidden: true })).not.toContain("CANARY");
    await credential.close();
  });
});

describe("events$ and status()", () => {
  test("a failed call and its retry are events; status() tells the key's health", async () => {
    const { clock, source, credential } = setup();
    source.script.push(
      new IdentityAuthenticationError(503, { error: "temporarily_unavailable" }),
      () => source.token(hour),
    );
    const events: { type: string; scopes?: readonly string[] }[] = [];
    const subscription = credential.events$.subscribe((event) => events.push(event));

    const pending = credential.getToken(scope);
    await clock.advance(20_000);
    await pending;
    const status = credential.status();

    expect(events.map((event) => event.type)).toEqual([
      "acquisition-started",
      "acquisition-failed",
      "acquisition-started",
      "acquisition-succeeded",
    ]);
    expect(events[0]?.scopes).toEqual([scope]);
    expect(JSON.stringify(events)).not.toContain("token-1");
    expect(status.closed).toBe(false);
    expect(status.tokenStore).toBe("none");
    expect(status.keys).toHaveLength(1);
    expect(status.keys[0]).toMatchObject({ scopes: [scope], consecutiveFailures: 0 });
    subscription.unsubscribe();
    await credential.close();
    expect(credential.status()).toMatchObject({ closed: true, keys: [] });
  });
});
