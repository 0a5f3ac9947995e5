/**
 * `rx-identity` as a one-shot program, run as users run it (the build in `dist/`): exit 2
 * with one line for every bad argument or configuration, validation errors included;
 * `--version`; every flag of every command in `--help` and in the README; and an emulator
 * whose wrapper dies does not outlive it.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCommand } from "../../src/cli/commands/demo.js";
import { emulatorCommand } from "../../src/cli/commands/emulator.js";
import { tokenCommand } from "../../src/cli/commands/token.js";
import { watchCommand } from "../../src/cli/commands/watch.js";
import { usage } from "../../src/cli/main.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { cleanEnv, lines, projectRoot, startCli } from "./run-cli.js";

const STORAGE = "https://storage.azure.com/.default";
const TENANT = "f0000000-0000-4000-8000-00000000000f";
const CLIENT_ID = "one-shot-cli";
const SECRET = "CANARY-cli-5ecret-77a0";
const built = [process.execPath, "dist/cli/bin.js"];

const run = (args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()) =>
  startCli(args, env, built).exited;

let emulator: EntraEmulator;
let scratch: string;
beforeAll(async () => {
  [emulator, scratch] = await Promise.all([
    startEntraEmulator(),
    mkdtemp(join(tmpdir(), "rx-identity-cli-")),
  ]);
  emulator.registerApplication({ clientId: CLIENT_ID, clientSecret: SECRET });
  await writeFile(join(scratch, "not-pem.txt"), "this is not a certificate\n");
  await writeFile(
    join(scratch, "broken.pem"),
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
  );
});
afterAll(async () => {
  await emulator?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv =>
  cleanEnv({
    AZURE_AUTHORITY_HOST: emulator.authorityHost,
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    AZURE_CLIENT_SECRET: SECRET,
    NODE_EXTRA_CA_CERTS: emulator.caFile,
    ...extra,
  });

describe("exit 2 and one line for every bad argument or configuration", () => {
  const cases: Array<{
    name: string;
    args: string[];
    env?: () => Record<string, string>;
    message: RegExp;
  }> = [
    {
      name: "a scope with a space",
      args: ["token", "--scope", `${STORAGE} https://vault.azure.net/.default`],
      message: /--scope ".*" contains whitespace: give each scope its own --scope/,
    },
    {
      name: "--tenant ../evil",
      args: ["token", "--scope", STORAGE, "--tenant", "../evil"],
      message: /--tenant "\.\.\/evil" is not a valid tenant id/,
    },
    {
      name: "a bad AZURE_TENANT_ID",
      args: ["token", "--scope", STORAGE],
      env: () => ({ AZURE_TENANT_ID: "contoso/../x" }),
      message: /AZURE_TENANT_ID "contoso\/\.\.\/x" is not a valid tenant id/,
    },
    {
      name: "an http: authority",
      args: ["token", "--scope", STORAGE],
      env: () => ({ AZURE_AUTHORITY_HOST: "http://127.0.0.1:1" }),
      message: /AZURE_AUTHORITY_HOST "http:\/\/127\.0\.0\.1:1" must use https/,
    },
    {
      name: "emulator --port 99999",
      args: ["emulator", "--port", "99999"],
      message: /--port must be an integer from 0 to 65535, got "99999"/,
    },
    {
      name: "a negative number (watch --count -1)",
      args: ["watch", "--scope", STORAGE, "--count", "-1"],
      message: /--count must be an integer of at least 1, got "-1"/,
    },
    {
      name: "--ca-file holding no PEM certificate",
      args: ["token", "--scope", STORAGE, "--ca-file", "not-pem.txt"],
      message: /--ca-file: ".*not-pem\.txt" holds no PEM certificate/,
    },
    {
      name: "--ca-file holding a broken PEM block",
      args: ["token", "--scope", STORAGE, "--ca-file", "broken.pem"],
      message: /--ca-file: certificate 1 of 1 in ".*broken\.pem" is not a valid PEM certificate/,
    },
    {
      name: "a CA file that is gone (its emulator stopped)",
      args: ["token", "--scope", STORAGE],
      env: () => ({ RX_IDENTITY_CA_FILE: join(scratch, "gone", "ca.pem") }),
      message:
        /RX_IDENTITY_CA_FILE: cannot read the CA file ".*" \(ENOENT\): if an emulator wrote it, that emulator has stopped/,
    },
  ];

  it.concurrent.each(cases)("$name", async ({ args, env: extra, message }) => {
    const resolved = args.map((arg) =>
      arg.endsWith(".txt") || arg.endsWith(".pem") ? join(scratch, arg) : arg,
    );

    const result = await run(resolved, env(extra?.() ?? {}));

    expect(result.stdout).toBe("");
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    // Nothing was sent, by this case or any other.
    expect(emulator.requestCount()).toBe(0);
  });
});

describe("the command line itself", () => {
  it("--version prints the package version", async () => {
    const { version } = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
      version: string;
    };

    const result = await run(["--version"]);

    expect(result).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  it("watch --count 1 says when it stops, not Ctrl-C", async () => {
    const result = await run(["watch", "--scope", STORAGE, "--count", "1"], env());

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`watching ${STORAGE} until 1 token`);
    expect(result.stdout + result.stderr).not.toContain("Ctrl-C");
  });

  it("--help and the README list every flag of every command", () => {
    const readme = readFileSync(join(projectRoot, "README.md"), "utf8");
    const missing: string[] = [];

    for (const command of [tokenCommand, watchCommand, emulatorCommand, demoCommand]) {
      if (!usage.includes(command.synopsis)) missing.push(`--help synopsis of ${command.name}`);
      if (!readme.includes(command.synopsis)) missing.push(`README synopsis of ${command.name}`);
      for (const flag of Object.keys(command.options).map((name) => `--${name}`)) {
        if (!command.help.includes(flag)) missing.push(`${command.name} --help: ${flag}`);
        if (
          flag !== "--help" &&
          !command.synopsis.includes(`[${flag}`) &&
          !command.synopsis.includes(` ${flag} `)
        ) {
          missing.push(`${command.name} synopsis: ${flag}`);
        }
      }
    }

    expect(missing).toEqual([]);
  });
});

/** Whether something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("rx-identity emulator under a wrapper", () => {
  it("stops, freeing its port and removing its CA folder, when the wrapper that started it is killed", async () => {
    // A wrapper that does not pass SIGTERM on, as npm's `npx` wrapper does not: `kill $!`
    // after `npx rx-identity emulator &` kills only the wrapper.
    const wrapper = spawn(
      "bash",
      ["-c", `"${process.execPath}" dist/cli/bin.js emulator & echo "pid=$!"; wait`],
      {
        cwd: projectRoot,
        env: cleanEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    wrapper.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    // "exit", not "close": the emulator holds the wrapper's stdout open while it lives.
    const wrapperExited = new Promise((resolve) => wrapper.once("exit", resolve));
    try {
      await expect.poll(() => output, { timeout: 15_000 }).toContain("Ctrl-C to stop.");
      const port = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      const caFile = /^ {2}CA file +(\S+)$/m.exec(output)?.[1] ?? "";
      expect(await listening(port)).toBe(true);
      expect(existsSync(caFile)).toBe(true);

      wrapper.kill("SIGTERM");
      await wrapperExited;

      await expect.poll(() => listening(port), { timeout: 5_000, interval: 100 }).toBe(false);
      await expect.poll(() => existsSync(caFile), { timeout: 5_000, interval: 100 }).toBe(false);
    } finally {
      wrapper.kill("SIGKILL");
      const orphan = Number(/^pid=(\d+)$/m.exec(output)?.[1]);
      if (orphan > 0) {
        try {
          process.kill(orphan, "SIGKILL");
        } catch {
          // Already gone, as it should be.
        }
      }
    }
  });
});
