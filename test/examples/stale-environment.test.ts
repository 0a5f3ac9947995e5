/**
 * The examples run as users run them (`tsx examples/<name>/index.ts`) with `AZURE_*`
 * variables pasted from an emulator that has stopped since: each ends with one line saying
 * so and exit code 1, not a stack trace after 20 s of retries.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCaFile } from "../../src/testing/emulator/certificate.js";
import { startEntraEmulator } from "../../src/testing/index.js";
import { cleanEnv, lines, startCli } from "../cli/run-cli.js";

const examples = ["long-lived-subscriber", "websocket-rotation", "storage-blob"];
let stale: Record<string, string>;
let keptCa: { path: string; remove(): Promise<void> };

beforeAll(async () => {
  const emulator = await startEntraEmulator();
  keptCa = await writeCaFile(emulator.caCertificate);
  stale = {
    AZURE_AUTHORITY_HOST: emulator.authorityHost,
    AZURE_TENANT_ID: "a1000000-0000-4000-8000-0000000000a1",
    AZURE_CLIENT_ID: "stale-app",
    AZURE_CLIENT_SECRET: "CANARY-stale-5ecret",
    RX_IDENTITY_CA_FILE: emulator.caFile,
    // storage-blob goes to this account instead of starting Azurite.
    AZURE_STORAGE_ACCOUNT_URL: "https://127.0.0.1:1/",
  };
  await emulator.stop();
});
afterAll(() => keptCa?.remove());

const runExample = (name: string, env: Record<string, string>) =>
  startCli([`examples/${name}/index.ts`], cleanEnv(env), [process.execPath, "--import", "tsx"])
    .exited;

describe.concurrent.each(examples)("examples/%s with stale AZURE_* variables", (name) => {
  // Each starts tsx, which compiles the example first: allow for a loaded machine.
  it("its CA file gone: exit 1 with one line naming it", { timeout: 90_000 }, async () => {
    const result = await runExample(name, stale);

    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      `${name}: RX_IDENTITY_CA_FILE=${stale["RX_IDENTITY_CA_FILE"]} is gone: the emulator that printed these variables has stopped: start it again and paste what it prints, or unset the AZURE_* variables to run against an embedded emulator`,
    ]);
    expect(result.stderr + result.stdout).not.toContain(stale["AZURE_CLIENT_SECRET"]);
  });
});

describe("examples/long-lived-subscriber with stale AZURE_* variables", () => {
  const name = "long-lived-subscriber";
  it(
    "its server gone: exit 1 with one line naming the authority",
    { timeout: 90_000 },
    async () => {
      const result = await runExample(name, { ...stale, RX_IDENTITY_CA_FILE: keptCa.path });

      expect(result.code).toBe(1);
      expect(lines(result.stderr)).toEqual([
        `${name}: nothing listens at AZURE_AUTHORITY_HOST=${stale["AZURE_AUTHORITY_HOST"]}: the emulator that printed these variables has stopped: start it again and paste what it prints, or unset the AZURE_* variables to run against an embedded emulator`,
      ]);
    },
  );
});
