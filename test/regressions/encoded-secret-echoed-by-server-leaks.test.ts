/**
 * Regression (issue #18, item 4): MSAL sends `client_secret=` URL-encoded, and the scrubber
 * removed only the literal secret, so a secret with `+`, `/`, `=`, a space or `%` came back
 * encoded from a server that echoes the request body, in the error message and in
 * `util.inspect(error)`. Against the emulator's `echoRequest` fault (the body and the
 * `Authorization` header appended to the error description), no form of the secret may show.
 */
import { inspect } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const secrets = [
  "Cn+8Q~base64/like=secret==",
  "with space and %25 percent",
  "plain-ascii-canary-91ab",
  "ümlaut+&=?#/secret",
];

/** What a careless caller or a log line would show of an error. */
function rendered(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return [
    String(error),
    (error as Error).message,
    inspect(error, { depth: 20, showHidden: true }),
    JSON.stringify(error),
    JSON.stringify(cause),
  ].join("\n");
}

/** The forms an echoing server can return, written out here independently of the fix. */
function revealing(secret: string, clientId: string): string[] {
  const encoded = encodeURIComponent(secret);
  return [
    secret,
    encoded,
    encoded.replaceAll("%20", "+"),
    new URLSearchParams({ v: secret }).toString().slice(2),
    Buffer.from(`${clientId}:${secret}`).toString("base64"),
  ];
}

let emulator: EntraEmulator;
beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

it.each(secrets)(
  "no form of the secret %j survives a server that echoes the request",
  async (secret) => {
    const clientId = `echo-${secrets.indexOf(secret)}`;
    emulator.registerApplication({ clientId, clientSecret: secret });
    emulator.injectFault({ status: 400, error: "invalid_request", echoRequest: true });
    const credential = new ClientSecretCredential(tenant, clientId, secret, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });

    const error = await credential
      .getToken("https://storage.azure.com/.default")
      .catch((e: unknown) => e);
    await credential.close();

    expect(isAuthenticationError(error)).toBe(true);
    const text = rendered(error);
    // The echo did reach the error (so this test sees what a leak would look like)...
    expect(text).toContain("Received:");
    expect(text).toContain("[REDACTED]");
    // ...and no form of the secret is in it.
    for (const form of revealing(secret, clientId)) expect(text).not.toContain(form);
  },
);
