/**
 * The fault matrix: every failure class a real identity service (or the network in front
 * of it) produces, through the real credential and real MSAL over HTTPS against the
 * emulator, on a virtual clock shared by the credential and the emulator. Each class is
 * checked in three situations a user meets:
 *
 * 1. a cold caller (no token yet) during an outage: classification, request count, the
 *    typed error; then recovery on the next call once the service is back;
 * 2. subscribers holding a token through an outage shorter than its remaining life: no
 *    error at all, and a fresh token right after the service returns;
 * 3. subscribers through an outage longer than the token's life: exactly one typed error
 *    each, never a stale token, then recovery on resubscribe and on the next call.
 *
 * `Math.random` is pinned to 0.5, so backoff delays (and request counts) are exact.
 */
import type { AccessToken } from "@azure/core-auth";
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError, type AuthenticationError } from "../../src/errors/index.js";
import { generateLoopbackCertificate } from "../../src/testing/emulator/certificate.js";
import {
  startEntraEmulator,
  type EntraEmulator,
  type FaultHandle,
  type FaultSpec,
} from "../../src/testing/index.js";
import { html503, startGateway, type Gateway } from "./support/gateway.js";
import { NetworkClock } from "./support/network-clock.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const scope = "https://storage.azure.com/.default";
const secret = "CANARY-matrix-5ecret-91d2";
const start = 1_900_000_000_000;
/** Backoff with random() = 0.5: 0.5, 1, 2, 4, 8, 8, ... s. */
const refresh = { retryBaseMs: 1_000, retryCapMs: 16_000 };
/** The default `retryWithoutTokenMs` and `permanentFailureBackoffMs`. */
const withoutTokenMs = 20_000;
const permanentBackoffMs = 60_000;
/** The credential's request time limit (REQUEST_TIMEOUT_MS). */
const requestTimeoutMs = 30_000;
/** A 3599 s token refreshes 5 min before expiry minus half its 5 min maximum jitter. */
const lifetimeMs = 3_599_000;
const refreshAtMs = lifetimeMs - 300_000 - 150_000;
const usableForMs = lifetimeMs - 30_000;

let emulator: EntraEmulator;
let gateway: Gateway;
let clock: NetworkClock;

beforeAll(async () => {
  const tls = await generateLoopbackCertificate();
  clock = new NetworkClock({ start, arrived: () => emulator.requests.length });
  emulator = await startEntraEmulator({ tls, now: () => clock.now() });
  gateway = await startGateway(emulator.host, tls);
});
afterAll(async () => {
  clock.dispose();
  await gateway.stop();
  await emulator.stop();
});
beforeEach(() => {
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
  emulator.clearFaults();
  gateway.clear();
  clock.hangingTokenRequests = false;
});

/** What a failure class looks like to the caller. */
interface Expected {
  readonly transient: boolean;
  readonly status: number;
  readonly error: string;
  readonly aadsts?: number;
  /** Whether the answer carried Entra's JSON error body (with a trace id). */
  readonly entraBody: boolean;
  /** Token requests a cold caller makes before it sees the error. */
  readonly coldRequests: number;
  /** How soon after the service returns a subscriber holding a token gets a fresh one. */
  readonly recoveryWithinMs: number;
}

interface Row {
  readonly name: string;
  /** Through the HTML-serving gateway rather than straight to the emulator. */
  readonly viaGateway?: true;
  /** The server holds requests unanswered: only the client's time limit ends them. */
  readonly hangs?: true;
  /** Starts the outage for `clientId`; returns how to end it. */
  readonly outage: (clientId: string) => () => void;
  readonly expected: Expected;
}

const fault =
  (spec: FaultSpec) =>
  (clientId: string): (() => void) => {
    const handle: FaultHandle = emulator.injectFault({
      ...spec,
      match: { clientId },
      times: Infinity,
    });
    return () => handle.remove();
  };

const transient5xx = (status: number, error: string): Row => ({
  name: `HTTP ${status}`,
  outage: fault({ status }),
  expected: {
    transient: true,
    status,
    error,
    aadsts: 90033,
    entraBody: true,
    // Attempts at 0, 0.5, 1.5, 3.5, 7.5 and 15.5 s: the next (23.5 s) is past the 20 s budget.
    coldRequests: 6,
    recoveryWithinMs: 8_000,
  },
});

const permanent = (
  name: string,
  outage: Row["outage"],
  status: number,
  error: string,
  aadsts: number,
): Row => ({
  name,
  outage,
  expected: {
    transient: false,
    status,
    error,
    aadsts,
    entraBody: true,
    coldRequests: 1,
    recoveryWithinMs: permanentBackoffMs,
  },
});

const rows: Row[] = [
  transient5xx(500, "server_error"),
  transient5xx(502, "server_error"),
  transient5xx(503, "temporarily_unavailable"),
  transient5xx(504, "server_error"),
  {
    name: "HTTP 429 with Retry-After in seconds",
    outage: fault({ status: 429, retryAfter: 2 }),
    expected: {
      transient: true,
      status: 429,
      error: "temporarily_unavailable",
      aadsts: 90033,
      entraBody: true,
      // At least 2 s as told and at least the backoff (a server delay is a lower bound):
      // 0, 2, 4, 6, 10 and 18 s; 26 s is past the budget.
      coldRequests: 6,
      recoveryWithinMs: 8_000,
    },
  },
  {
    name: "HTTP 429 with Retry-After as an HTTP-date",
    // 9 s ahead, truncated to the second: a delay in (8, 9] s, measured on the wall clock.
    outage: (clientId) =>
      fault({ status: 429, retryAfter: new Date(Date.now() + 9_000).toUTCString() })(clientId),
    expected: {
      transient: true,
      status: 429,
      error: "temporarily_unavailable",
      aadsts: 90033,
      entraBody: true,
      // 0, ~8.5, ~17 s; ~25.5 s is past the budget.
      coldRequests: 3,
      recoveryWithinMs: 9_000,
    },
  },
  {
    name: "connection reset (dropped)",
    outage: fault({ drop: true }),
    expected: {
      transient: true,
      status: 0,
      error: "network_error",
      entraBody: false,
      coldRequests: 6,
      recoveryWithinMs: 8_000,
    },
  },
  {
    name: "no answer (request time limit)",
    hangs: true,
    outage: fault({ hang: true }),
    expected: {
      transient: true,
      status: 0,
      error: "network_error",
      entraBody: false,
      // The first attempt alone outlasts the 20 s budget.
      coldRequests: 1,
      recoveryWithinMs: requestTimeoutMs + 8_000,
    },
  },
  {
    name: "HTML 503 from a gateway",
    viaGateway: true,
    outage: () => {
      gateway.fail({ status: 503, body: html503, times: Infinity });
      return () => gateway.clear();
    },
    expected: {
      transient: true,
      status: 503,
      // No Entra body to read the OAuth error from: the status alone classifies it.
      error: "unknown_error",
      entraBody: false,
      coldRequests: 6,
      recoveryWithinMs: 8_000,
    },
  },
  {
    name: "malformed JSON",
    outage: fault({ malformedJson: true }),
    expected: {
      transient: false,
      status: 200,
      error: "token_parsing_error",
      entraBody: false,
      coldRequests: 1,
      recoveryWithinMs: permanentBackoffMs,
    },
  },
  {
    name: "a body without expires_in",
    outage: fault({ omitExpiresIn: true }),
    expected: {
      transient: false,
      status: 200,
      error: "invalid_response",
      entraBody: false,
      coldRequests: 1,
      recoveryWithinMs: permanentBackoffMs,
    },
  },
  permanent(
    "invalid_client (wrong secret)",
    (clientId) => {
      emulator.registerApplication({ clientId, clientSecret: "the-rotated-one" });
      return () => emulator.registerApplication({ clientId, clientSecret: secret });
    },
    401,
    "invalid_client",
    7000215,
  ),
  permanent(
    "expired secret (AADSTS7000222)",
    (clientId) => {
      emulator.registerApplication({
        clientId,
        clientSecret: secret,
        secretExpiresOn: new Date(clock.now() - 1),
      });
      return () => emulator.registerApplication({ clientId, clientSecret: secret });
    },
    401,
    "invalid_client",
    7000222,
  ),
  permanent(
    "unknown tenant (AADSTS90002)",
    fault({ status: 400, error: "invalid_request", aadsts: 90002 }),
    400,
    "invalid_request",
    90002,
  ),
  permanent(
    "invalid_scope",
    fault({ status: 400, error: "invalid_scope", aadsts: 70011 }),
    400,
    "invalid_scope",
    70011,
  ),
  permanent(
    "unauthorized_client",
    fault({ status: 400, error: "unauthorized_client", aadsts: 700016 }),
    400,
    "unauthorized_client",
    700016,
  ),
];

let appCounter = 0;

/** A fresh application and credential for one row, and its request counter. */
function setup(row: Row): {
  credential: ClientSecretCredential;
  clientId: string;
  requests: () => number;
} {
  const clientId = `matrix-${++appCounter}`;
  emulator.registerApplication({ clientId, clientSecret: secret });
  const answeredBefore = gateway.answered;
  const credential = new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: row.viaGateway ? gateway.authorityHost : emulator.authorityHost,
    ca: emulator.caCertificate,
    scheduler: clock,
    refresh,
  });
  return {
    credential,
    clientId,
    requests: () =>
      emulator.requestCount({ clientId }) +
      (row.viaGateway ? gateway.answered - answeredBefore : 0),
  };
}

function expectTyped(error: unknown, row: Row): void {
  const { expected } = row;
  expect(isAuthenticationError(error), String(error)).toBe(true);
  const typed = error as AuthenticationError;
  expect(typed.transient).toBe(expected.transient);
  expect(typed.statusCode).toBe(expected.status);
  expect(typed.errorResponse.error).toBe(expected.error);
  expect(typed.errorResponse.correlationId).toMatch(/^[0-9a-f-]{36}$/);
  if (expected.aadsts !== undefined) {
    expect(typed.errorResponse.errorCodes).toEqual([expected.aadsts]);
    expect(typed.message).toContain(`AADSTS${expected.aadsts}`);
  }
  if (expected.entraBody) expect(typed.errorResponse.traceId).toMatch(/^[0-9a-f-]{36}$/);
  for (const shown of [typed.message, inspect(typed, { depth: 10 }), JSON.stringify(typed)]) {
    expect(shown).not.toContain(secret);
  }
}

/** Two subscribers that record what they see, with the clock time of each token. */
function subscribers(credential: ClientSecretCredential, count = 2) {
  return Array.from({ length: count }, () => {
    const seen = {
      tokens: [] as { token: AccessToken; at: number }[],
      errors: [] as unknown[],
      subscription: credential.token$(scope).subscribe({
        next: (token) => seen.tokens.push({ token, at: clock.now() }),
        error: (error: unknown) => seen.errors.push(error),
      }),
    };
    return seen;
  });
}

/** No token is ever delivered inside its forced window or after it expired. */
function expectNeverStale(delivered: readonly { token: AccessToken; at: number }[]): void {
  for (const { token, at } of delivered) {
    const exp = (
      JSON.parse(Buffer.from(token.token.split(".")[1]!, "base64url").toString("utf8")) as {
        exp: number;
      }
    ).exp;
    expect(Math.abs(exp * 1000 - token.expiresOnTimestamp)).toBeLessThanOrEqual(1_000);
    expect(at).toBeLessThan(token.expiresOnTimestamp - 30_000);
  }
}

async function closeAndExpectQuiet(credential: ClientSecretCredential): Promise<void> {
  await credential.close();
  await clock.idle();
  expect(clock.pending).toBe(0);
  expect(clock.inFlight).toBe(0);
}

describe.each(rows)("$name", (row) => {
  it("a cold caller: classified, counted, typed; the next call recovers", async () => {
    const { credential, clientId, requests } = setup(row);
    const t0 = clock.now();
    const end = row.outage(clientId);
    clock.hangingTokenRequests = row.hangs === true;

    let outcome: { error: unknown } | { token: AccessToken } | undefined;
    credential.getToken(scope).then(
      (token) => (outcome = { token }),
      (error: unknown) => (outcome = { error }),
    );
    await clock.advanceUntil(() => outcome !== undefined, 120_000);

    expect(outcome).toBeDefined();
    expect(outcome && "error" in outcome).toBe(true);
    expectTyped((outcome as { error: unknown }).error, row);
    expect(requests()).toBe(row.expected.coldRequests);
    expect(clock.now() - t0).toBeLessThan(row.hangs ? requestTimeoutMs + 1 : withoutTokenMs);
    // Permanent failures are not hammered: nothing more happens on its own.
    await clock.advance(300_000);
    expect(requests()).toBe(row.expected.coldRequests);

    end();
    clock.hangingTokenRequests = false;
    const pending = credential.getToken(scope);
    await clock.idle();
    const token = await pending;
    expect(token.token).toMatch(/^ey/);
    expect(requests()).toBe(row.expected.coldRequests + 1);
    await closeAndExpectQuiet(credential);
  });

  it("subscribers through an outage shorter than the token's life: no error, prompt recovery", async () => {
    const { credential, clientId, requests } = setup(row);
    const t0 = clock.now();
    const subs = subscribers(credential);
    await clock.advanceUntil(() => subs.every((s) => s.tokens.length === 1), 1_000);
    expect(requests()).toBe(1);
    const first = subs[0]!.tokens[0]!.token;

    // The outage starts just before the refresh and lasts 90 s, well inside the token's life.
    await clock.advance(refreshAtMs - 1_000);
    const end = row.outage(clientId);
    clock.hangingTokenRequests = row.hangs === true;
    await clock.advance(91_000);
    expect(requests()).toBeGreaterThan(1);
    const outageEnd = clock.now();
    end();
    clock.hangingTokenRequests = false;
    await clock.advanceUntil(
      () => subs.every((s) => s.tokens.length === 2),
      row.expected.recoveryWithinMs,
    );

    for (const s of subs) {
      expect(s.errors).toEqual([]);
      expect(s.tokens.map((t) => t.token.token)).toEqual([
        first.token,
        subs[0]!.tokens[1]!.token.token,
      ]);
      expect(s.tokens[1]!.at - outageEnd).toBeLessThanOrEqual(row.expected.recoveryWithinMs);
      expectNeverStale(s.tokens);
    }
    expect(subs[0]!.tokens[1]!.token.token).not.toBe(first.token);
    // The caller path still answers from memory, without a request.
    const before = requests();
    const pending = credential.getToken(scope);
    await clock.idle();
    expect((await pending).token).toBe(subs[0]!.tokens[1]!.token.token);
    expect(requests()).toBe(before);
    expect(clock.now() - t0).toBeLessThan(usableForMs);
    for (const s of subs) s.subscription.unsubscribe();
    await closeAndExpectQuiet(credential);
  });

  it("subscribers through an outage longer than the token's life: one typed error each, then recovery", async () => {
    const { credential, clientId, requests } = setup(row);
    const subs = subscribers(credential);
    await clock.advanceUntil(() => subs.every((s) => s.tokens.length === 1), 1_000);
    const first = subs[0]!.tokens[0]!.token;

    await clock.advance(refreshAtMs - 1_000);
    const end = row.outage(clientId);
    clock.hangingTokenRequests = row.hangs === true;
    // Past the end of the usable life, the budget without a token, and one request limit.
    await clock.advance(usableForMs - refreshAtMs + withoutTokenMs + requestTimeoutMs + 5_000);

    for (const s of subs) {
      expect(s.tokens.map((t) => t.token.token)).toEqual([first.token]);
      expect(s.errors).toHaveLength(1);
      expectTyped(s.errors[0], row);
      expectNeverStale(s.tokens);
    }
    expect(subs[0]!.errors[0]).toBe(subs[1]!.errors[0]);
    // A caller during the outage gets the typed error too, never the expired token.
    let during: unknown;
    credential.getToken(scope).catch((error: unknown) => (during = error));
    await clock.advanceUntil(() => during !== undefined, 120_000);
    expectTyped(during, row);

    end();
    clock.hangingTokenRequests = false;
    const before = requests();
    const again = subscribers(credential, 1)[0]!;
    await clock.advanceUntil(() => again.tokens.length === 1, 1_000);
    expect(again.errors).toEqual([]);
    expect(again.tokens[0]!.token.token).not.toBe(first.token);
    expectNeverStale(again.tokens);
    expect(requests()).toBe(before + 1);
    const pending = credential.getToken(scope);
    await clock.idle();
    expect((await pending).token).toBe(again.tokens[0]!.token.token);
    expect(requests()).toBe(before + 1);
    again.subscription.unsubscribe();
    await closeAndExpectQuiet(credential);
  });
});
