/**
 * Regression (issue #18, item 8): `expires_in` was taken as it came. `1e300` made a token
 * that was never refreshed (and past ~8.64e12 s its ISO date in the log threw, and the
 * Redis `PX` went out of range); `"0x10"` read as 16 s through `Number` (MSAL's
 * `parseInt(expires_in, 10)` reads 0); `0.0001` became a "check the clock of this machine"
 * error. Now `expires_in` is a decimal number of seconds, clamped to 24 hours, and a
 * malformed or too short one is an `invalid_response` AuthenticationError. Against the
 * emulator, through the real MSAL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError, isCredentialUnavailableError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const scope = "https://storage.azure.com/.default";
const DAY_MS = 86_400_000;
let emulator: EntraEmulator;
let serial = 0;

beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

async function getTokenAnswered(expiresIn: number | string) {
  const clientId = `expires-in-${++serial}`;
  emulator.registerApplication({ clientId, clientSecret: "s" });
  const fault = emulator.injectFault({ match: { clientId }, expiresIn });
  const credential = new ClientSecretCredential(tenant, clientId, "s", {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
  });
  const before = Date.now();
  try {
    const outcome = await credential.getToken(scope).then(
      (token) => ({ token }),
      (error: unknown) => ({ error }),
    );
    return { ...outcome, before, requests: emulator.requestCount({ clientId }) };
  } finally {
    fault.remove();
    await credential.close();
  }
}

describe("expires_in", () => {
  it.each([
    ["a hexadecimal string", "0x10", /not a decimal number of seconds \("0x10"\)/],
    ["an exponent in a string", "1e3", /not a decimal number of seconds/],
    ["text", "12abc", /not a decimal number of seconds/],
    ["a fraction of a millisecond", 0.0001, /expires_in of 0.0001 s, under the 1 s/],
    ["zero", 0, /under the 1 s/],
    ["a negative number", -60, /under the 1 s/],
  ])("%s is an invalid response, not a token nor a clock error", async (_, value, message) => {
    const { error, requests } = (await getTokenAnswered(value)) as {
      error?: unknown;
      requests: number;
    };

    expect(isCredentialUnavailableError(error)).toBe(false);
    expect(isAuthenticationError(error)).toBe(true);
    expect(error).toMatchObject({ statusCode: 200, transient: false });
    expect((error as { errorResponse: { error: string } }).errorResponse.error).toBe(
      "invalid_response",
    );
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/clock/);
    expect(requests).toBe(1);
  });

  it.each([
    ["1e300", 1e300],
    ["a week", 604_800],
  ])("%s is clamped to 24 hours, and the token still refreshes", async (_, value) => {
    const { token, before } = (await getTokenAnswered(value)) as {
      token: { expiresOnTimestamp: number; refreshAfterTimestamp?: number };
      before: number;
    };

    expect(token.expiresOnTimestamp).toBeGreaterThan(before + DAY_MS - 60_000);
    expect(token.expiresOnTimestamp).toBeLessThanOrEqual(Date.now() + DAY_MS);
    expect(token.refreshAfterTimestamp).toBeLessThan(token.expiresOnTimestamp);
    expect(new Date(token.expiresOnTimestamp).toISOString()).toMatch(/^\d{4}-/);
  });

  it("a decimal string is a lifetime, as Entra ID's v1 endpoint sends it", async () => {
    const { token, before } = (await getTokenAnswered("3599")) as {
      token: { expiresOnTimestamp: number };
      before: number;
    };

    expect(token.expiresOnTimestamp).toBeGreaterThan(before + 3_599_000 - 60_000);
    expect(token.expiresOnTimestamp).toBeLessThanOrEqual(Date.now() + 3_599_000);
  });
});
