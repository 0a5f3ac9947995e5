/**
 * Regression: a token endpoint that echoed the client secret in its error description had
 * it scrubbed from our message, but MSAL's `ServerError`, kept as `cause`, still held it,
 * so `util.inspect(error)` and `JSON.stringify(error.cause)` printed the secret.
 */
import { inspect } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const secret = "echoed-secret-4c1f-canary";
let emulator: EntraEmulator;
beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

it("the cause chain of an error whose server echoed the secret is scrubbed", async () => {
  emulator.registerApplication({ clientId: "echo", clientSecret: secret });
  emulator.injectFault({ status: 400, error: "invalid_request", description: `bad ${secret}` });
  const credential = new ClientSecretCredential(
    "a0000000-0000-4000-8000-00000000000a",
    "echo",
    secret,
    {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    },
  );
  const error = await credential
    .getToken("https://storage.azure.com/.default")
    .catch((e: unknown) => e);
  await credential.close();
  expect(isAuthenticationError(error)).toBe(true);
  const cause = (error as { cause?: unknown }).cause;
  expect(cause).toBeInstanceOf(Error);
  expect((cause as Error).name).toBe("ServerError");
  expect((cause as Error).message).toContain("[REDACTED]");
  expect(inspect(error, { depth: 20, showHidden: true })).not.toContain(secret);
  expect(JSON.stringify(cause)).not.toContain(secret);
});
