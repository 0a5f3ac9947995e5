import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { cleanEnv, lines, runCli, startCli } from "./run-cli.js";

const STORAGE = "https://storage.azure.com/.default";
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "5b8a9c1d-0000-4000-8000-00000000c11e";
const SECRET = "cli-test-secret-canary-7f3a";

describe("rx-identity --help and bad usage", () => {
  it("prints help for the program and each subcommand with exit code 0", async () => {
    const results = await Promise.all(
      [
        ["--help"],
        ["token", "--help"],
        ["watch", "--help"],
        ["emulator", "--help"],
        ["demo", "-h"],
      ].map((args) => runCli(args)),
    );

    const [top, token, watch, emulator, demo] = results;
    for (const result of results) expect(result.code).toBe(0);
    expect(top!.stdout).toContain("Usage: rx-identity <command>");
    expect(top!.stdout).toMatch(/token\s+print an access token/);
    expect(token!.stdout).toContain("Usage: rx-identity token --scope SCOPE");
    expect(token!.stdout).toContain("--json");
    expect(watch!.stdout).toContain("Usage: rx-identity watch --scope SCOPE");
    expect(emulator!.stdout).toContain("--refresh-in S");
    expect(demo!.stdout).toContain("--duration S");
  });

  it("answers bad arguments and missing variables with one line on stderr and a non-zero exit", async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /^Usage: rx-identity/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["token"], /--scope is required/],
      [["token", "--scope", STORAGE, "--verbose"], /Unknown option '--verbose'/],
      [["token", "--scope", STORAGE, "--claims", "[1]"], /--claims must be a JSON object/],
      [
        ["watch", "--scope", STORAGE, "--count", "0"],
        /--count must be an integer of at least 1, got "0"/,
      ],
      [
        ["emulator", "--lifetime", "soon"],
        /--lifetime must be an integer of at least 1, got "soon"/,
      ],
      [
        ["token", "--scope", STORAGE],
        /missing environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET/,
      ],
    ];

    const results = await Promise.all(cases.map(([args]) => runCli(args)));

    results.forEach((result, index) => {
      const [args, expected] = cases[index]!;
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout, args.join(" ")).toBe("");
      if (args.length > 0) expect(lines(result.stderr), args.join(" ")).toHaveLength(1);
      expect(result.stderr, args.join(" ")).toMatch(expected);
    });
  });
});

describe("rx-identity token and watch against the emulator", () => {
  let emulator: EntraEmulator;
  const env = (): NodeJS.ProcessEnv =>
    cleanEnv({
      AZURE_AUTHORITY_HOST: emulator.authorityHost,
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_CLIENT_SECRET: SECRET,
      NODE_EXTRA_CA_CERTS: emulator.caFile,
    });

  beforeAll(async () => {
    emulator = await startEntraEmulator({ tokenLifetimeSeconds: 600, refreshInSeconds: 300 });
    emulator.registerApplication({ clientId: CLIENT_ID, clientSecret: SECRET });
  });
  afterAll(() => emulator.stop());

  it("token --json prints the az account get-access-token shape, trusting the emulator through NODE_EXTRA_CA_CERTS", async () => {
    emulator.clearRequests();

    const result = await runCli(["token", "--scope", STORAGE, "--json"], env());

    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(output).sort()).toEqual([
      "accessToken",
      "expiresOn",
      "expires_on",
      "tenant",
      "tokenType",
    ]);
    expect(output["tokenType"]).toBe("Bearer");
    expect(output["tenant"]).toBe(TENANT);
    const claims = emulator.verifyToken(output["accessToken"] as string);
    expect(claims["aud"]).toBe("https://storage.azure.com");
    expect(claims["tid"]).toBe(TENANT);
    // The credential dates expiry from when the request left (never later than the token's
    // own `exp`); the emulator stamps `exp` on arrival, so the two may be a second apart.
    const exp = claims["exp"] as number;
    expect(output["expires_on"]).toBeLessThanOrEqual(exp);
    expect(output["expires_on"]).toBeGreaterThanOrEqual(exp - 1);
    expect(output["expiresOn"]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    expect(emulator.requestCount({ scope: STORAGE })).toBe(1);
  });

  it("token trusts the emulator through --ca-file, and sends --claims and --cae", async () => {
    emulator.clearRequests();
    const { NODE_EXTRA_CA_CERTS: _unused, ...withoutCa } = env();
    const claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';

    const result = await runCli(
      ["token", "--scope", STORAGE, "--ca-file", emulator.caFile, "--claims", claims, "--cae"],
      withoutCa,
    );

    expect(result.code).toBe(0);
    expect(emulator.verifyToken(result.stdout.trim())["aud"]).toBe("https://storage.azure.com");
    expect(emulator.requestCount({ claims, cae: true })).toBe(1);
  });

  it("a refused secret exits 1 with one line naming the AADSTS code, never the secret", async () => {
    const result = await runCli(["token", "--scope", STORAGE], {
      ...env(),
      AZURE_CLIENT_SECRET: "wrong-secret-canary",
    });

    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toContain("AADSTS7000215");
    expect(result.stderr + result.stdout).not.toContain("wrong-secret-canary");
  });

  it("watch --count 2 prints a redacted line per refreshed token", async () => {
    emulator.registerApplication({
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      tokenLifetimeSeconds: 8,
      refreshInSeconds: 1,
    });
    emulator.clearRequests();
    try {
      const result = await runCli(["watch", "--scope", STORAGE, "--count", "2"], env());

      expect(result.code).toBe(0);
      const tokenLines = lines(result.stdout).filter((line) => line.includes("token #"));
      expect(tokenLines).toHaveLength(2);
      expect(tokenLines[0]).toMatch(/token #1 eyJ\w{3}…\(\d+ chars\)/);
      expect(result.stdout).not.toMatch(/eyJ[\w-]{20,}/);
      expect(emulator.requestCount({ scope: STORAGE })).toBe(2);
    } finally {
      emulator.registerApplication({ clientId: CLIENT_ID, clientSecret: SECRET });
    }
  });
});

describe("rx-identity emulator", () => {
  it("prints variables that rx-identity token can use, and stops cleanly on Ctrl-C", async () => {
    const emulator = startCli(["emulator", "--lifetime", "120"]);
    try {
      await expect.poll(() => emulator.stdout(), { timeout: 15_000 }).toContain("Ctrl-C to stop.");
      const exports = Object.fromEntries(
        [...emulator.stdout().matchAll(/^export (\w+)=(.*)$/gm)].map((match) => [
          match[1]!,
          match[2]!,
        ]),
      );
      expect(Object.keys(exports).sort()).toEqual([
        "AZURE_AUTHORITY_HOST",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "RX_IDENTITY_CA_FILE",
      ]);

      const token = await runCli(["token", "--scope", STORAGE, "--json"], cleanEnv(exports));

      expect(token.code).toBe(0);
      const output = JSON.parse(token.stdout) as { expires_on: number };
      expect(output.expires_on * 1_000 - Date.now()).toBeGreaterThan(60_000);
      await expect
        .poll(() => emulator.stdout(), { timeout: 5_000 })
        .toMatch(/token request .* -> 200/);

      emulator.child.kill("SIGINT");
      const exited = await emulator.exited;

      expect(exited.code).toBe(0);
      expect(existsSync(exports["RX_IDENTITY_CA_FILE"]!)).toBe(false);
    } finally {
      emulator.child.kill("SIGKILL");
    }
  });
});
