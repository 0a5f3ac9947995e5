/**
 * Regression: the credential's request time limit ran on a real Node timer while every
 * other timer ran on the credential's `scheduler`, so on a virtual clock a hung token
 * request never timed out (and in real time it took 30 s whatever the clock said).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { REQUEST_TIMEOUT_MS } from "../../src/credential/acquire.js";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError, type AuthenticationError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { NetworkClock } from "../reliability/support/network-clock.js";

let emulator: EntraEmulator;
let clock: NetworkClock;
beforeAll(async () => {
  clock = new NetworkClock({ start: 1_900_000_000_000, arrived: () => emulator.requests.length });
  emulator = await startEntraEmulator({ now: () => clock.now() });
});
afterAll(async () => {
  clock.dispose();
  await emulator.stop();
});

it("a hung token request times out after REQUEST_TIMEOUT_MS on the credential's clock", async () => {
  emulator.registerApplication({ clientId: "hung", clientSecret: "hung-secret-1" });
  emulator.injectFault({ hang: true, times: Infinity });
  const credential = new ClientSecretCredential(
    "a0000000-0000-4000-8000-00000000000a",
    "hung",
    "hung-secret-1",
    { authorityHost: emulator.authorityHost, ca: emulator.caCertificate, scheduler: clock },
  );
  clock.hangingTokenRequests = true;
  const started = clock.now();
  let error: unknown;
  credential.getToken("https://storage.azure.com/.default").catch((e: unknown) => (error = e));
  await clock.advanceUntil(() => error !== undefined, 2 * REQUEST_TIMEOUT_MS);
  expect(isAuthenticationError(error)).toBe(true);
  expect((error as AuthenticationError).errorResponse.errorDescription).toContain(
    "Request timeout",
  );
  expect(clock.now() - started).toBe(REQUEST_TIMEOUT_MS);
  await credential.close();
});
