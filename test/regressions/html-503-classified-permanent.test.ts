/**
 * Regression: a token response whose body is not JSON (a gateway's HTML 503 page) made the
 * network client throw a bare `token_parsing_error`, which dropped the HTTP status, so the
 * credential classified a transient 503 as a permanent failure and never retried it.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError, type AuthenticationError } from "../../src/errors/index.js";
import { generateLoopbackCertificate } from "../../src/testing/emulator/certificate.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { html503, startGateway, type Gateway } from "../reliability/support/gateway.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const scope = "https://storage.azure.com/.default";
const secret = "regression-secret";
let emulator: EntraEmulator;
let gateway: Gateway;

beforeAll(async () => {
  const tls = await generateLoopbackCertificate();
  emulator = await startEntraEmulator({ tls });
  gateway = await startGateway(emulator.host, tls);
});
afterAll(async () => {
  await gateway.stop();
  await emulator.stop();
});

function credentialFor(clientId: string, retryWithoutTokenMs: number): ClientSecretCredential {
  emulator.registerApplication({ clientId, clientSecret: secret });
  return new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: gateway.authorityHost,
    ca: emulator.caCertificate,
    refresh: { retryBaseMs: 1, retryCapMs: 5, retryWithoutTokenMs },
  });
}

it("an HTML 503 from a gateway is a transient AuthenticationError with status 503", async () => {
  const credential = credentialFor("html-503-typed", 0);
  gateway.fail({ status: 503, body: html503, headers: { "retry-after": "7" } });
  try {
    const error = await credential.getToken(scope).catch((e: unknown) => e);
    expect(isAuthenticationError(error)).toBe(true);
    const typed = error as AuthenticationError;
    expect(typed.statusCode).toBe(503);
    expect(typed.transient).toBe(true);
    expect(typed.retryAfterMs).toBe(7_000);
    expect(typed.errorResponse.correlationId).toMatch(/^[0-9a-f-]{36}$/);
  } finally {
    await credential.close();
  }
});

it("is retried, and the caller gets a token once the service answers", async () => {
  const credential = credentialFor("html-503-retried", 10_000);
  const before = gateway.answered;
  gateway.fail({ status: 503, body: html503 });
  try {
    const token = await credential.getToken(scope);
    expect(token.token).toMatch(/^ey/);
    expect(gateway.answered - before).toBe(1);
    expect(emulator.requestCount({ clientId: "html-503-retried" })).toBe(1);
  } finally {
    await credential.close();
  }
});
