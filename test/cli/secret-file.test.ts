/**
 * The secret file in the CLI (`--secret-file`, `AZURE_CLIENT_SECRET_FILE`) and in
 * `ClientSecretCredential.fromEnvironment`: real processes, real files, the real emulator.
 */
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { cleanEnv, lines, runCli, startCli } from "./run-cli.js";

const STORAGE = "https://storage.azure.com/.default";
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "5b8a9c1d-0000-4000-8000-0000005ecf11";
const OLD = "file-secret-old-canary-41c2";
const NEW = "file-secret-new-canary-9d07";

let emulator: EntraEmulator;
let folder: string;
let secretFile: string;
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv =>
  cleanEnv({
    AZURE_AUTHORITY_HOST: emulator.authorityHost,
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    NODE_EXTRA_CA_CERTS: emulator.caFile,
    ...extra,
  });

beforeAll(async () => {
  emulator = await startEntraEmulator();
  folder = await mkdtemp(join(tmpdir(), "rx-identity-cli-secret-"));
  secretFile = join(folder, "client-secret");
});
afterAll(async () => {
  await emulator.stop();
  await rm(folder, { recursive: true, force: true });
});

describe("a client secret file", () => {
  it("token --secret-file and AZURE_CLIENT_SECRET_FILE print a token; a missing file is a usage error", async () => {
    emulator.registerApplication({ clientId: CLIENT_ID, clientSecret: OLD });
    await writeFile(secretFile, `${OLD}\n`);

    const [flag, variable, missing] = await Promise.all([
      runCli(["token", "--scope", STORAGE, "--secret-file", secretFile], env()),
      runCli(["token", "--scope", STORAGE], env({ AZURE_CLIENT_SECRET_FILE: secretFile })),
      runCli(["token", "--scope", STORAGE, "--secret-file", join(folder, "nope")], env()),
    ]);

    expect(flag.code, flag.stderr).toBe(0);
    expect(flag.stdout.trim()).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(variable.code, variable.stderr).toBe(0);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `cannot read the client secret file "${join(folder, "nope")}" (ENOENT)`,
    );
    for (const result of [flag, variable, missing]) {
      expect(result.stdout + result.stderr).not.toContain(OLD);
    }
  });

  it("watch --secret-file keeps going when the file is rotated and the old secret revoked", async () => {
    emulator.registerApplication({
      clientId: CLIENT_ID,
      clientSecret: OLD,
      tokenLifetimeSeconds: 8,
      refreshInSeconds: 1,
    });
    await writeFile(secretFile, OLD);
    const watch = startCli(
      ["watch", "--scope", STORAGE, "--count", "3", "--secret-file", secretFile],
      env({ AZURE_LOG_LEVEL: "info" }),
    );
    const deadline = Date.now() + 10_000;
    while (!watch.stdout().includes("token #1") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    emulator.addClientSecret(CLIENT_ID, NEW);
    await writeFile(join(folder, ".tmp-secret"), NEW);
    await rename(join(folder, ".tmp-secret"), secretFile);
    await new Promise((resolve) => setTimeout(resolve, 400));
    emulator.revokeClientSecret(CLIENT_ID, OLD);
    const result = await watch.exited;

    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout).filter((line) => line.includes("token #"))).toHaveLength(3);
    expect(result.stderr).toContain("client secret rotated");
    expect(result.stdout + result.stderr).not.toMatch(new RegExp(`${OLD}|${NEW}`));
    expect(emulator.requestCount({ clientId: CLIENT_ID, status: 401 })).toBe(0);
  }, 20_000);

  it("fromEnvironment follows AZURE_CLIENT_SECRET_FILE, which wins over AZURE_CLIENT_SECRET", async () => {
    emulator.registerApplication({ clientId: CLIENT_ID, clientSecret: NEW });
    await writeFile(secretFile, NEW);
    const credential = ClientSecretCredential.fromEnvironment(
      { ca: emulator.caCertificate },
      {
        AZURE_TENANT_ID: TENANT,
        AZURE_CLIENT_ID: CLIENT_ID,
        AZURE_CLIENT_SECRET: "a-stale-secret-in-the-environment",
        AZURE_CLIENT_SECRET_FILE: secretFile,
        AZURE_AUTHORITY_HOST: emulator.authorityHost,
      },
    );
    try {
      const token = await credential.getToken(STORAGE);

      expect(token.token).toMatch(/^eyJ/);
      expect(emulator.requestCount({ clientId: CLIENT_ID, status: 401 })).toBe(0);
    } finally {
      await credential.close();
    }
  });
});
