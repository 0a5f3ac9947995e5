/**
 * `rx-identity watch --events` in a real process: the credential's events and its status
 * after each token, as an operator sees them, across a refresh that fails once with a 503.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { cleanEnv, lines, runCli } from "./run-cli.js";

const STORAGE = "https://storage.azure.com/.default";
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "5b8a9c1d-0000-4000-8000-0000000e0e7e";
const SECRET = "watch-events-secret-canary-2c4d";

describe("rx-identity watch --events", () => {
  let emulator: EntraEmulator;

  beforeAll(async () => {
    emulator = await startEntraEmulator();
    emulator.registerApplication({
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      tokenLifetimeSeconds: 8,
      refreshInSeconds: 1,
    });
  });
  afterAll(() => emulator.stop());

  it("prints each acquisition, the failed attempt with its retry, and the status after each token", async () => {
    // Arrange: the second request (the first refresh) is answered 503 once.
    const env = cleanEnv({
      AZURE_AUTHORITY_HOST: emulator.authorityHost,
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_CLIENT_SECRET: SECRET,
      NODE_EXTRA_CA_CERTS: emulator.caFile,
    });
    const first = runCli(["watch", "--scope", STORAGE, "--count", "2", "--events"], env);
    await expect
      .poll(() => emulator.requestCount({ clientId: CLIENT_ID }), { timeout: 15_000 })
      .toBe(1);
    emulator.injectFault({ status: 503, match: { clientId: CLIENT_ID } });

    // Act
    const result = await first;

    // Assert
    console.log(`rx-identity watch --events output:\n${result.stdout}`);
    expect(result.code).toBe(0);
    const out = lines(result.stdout);
    expect(
      out.filter((line) =>
        /event acquired https:\/\/storage\.azure\.com\/\.default in \d+ ms/.test(line),
      ),
    ).toHaveLength(2);
    expect(
      out.some((line) =>
        /event failed .*transient AuthenticationError \(status 503 temporarily_unavailable AADSTS90033\).*retry in/.test(
          line,
        ),
      ),
    ).toBe(true);
    expect(out.some((line) => /event serving the held token/.test(line))).toBe(true);
    expect(
      out.filter((line) =>
        /status https:\/\/storage\.azure\.com\/\.default: usable for \S+, refresh in/.test(line),
      ),
    ).toHaveLength(2);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(emulator.requestCount({ clientId: CLIENT_ID })).toBe(3);
  });
});
