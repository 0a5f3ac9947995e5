/**
 * Regression: the MSAL network client passed each acquisition's AbortSignal to its requests
 * through an `AsyncLocalStorage`. On Node 20 the first `AsyncLocalStorage.run` turns on
 * async-hook promise tracking for the whole process, so every promise of the user's
 * application cost about 72 bytes more and extra CPU merely because a credential had fetched a
 * token. The client now finds a call's context by MSAL's correlation id instead.
 *
 * How it is observed: with promise tracking on, `async_hooks.executionAsyncResource()` inside a
 * promise continuation is that promise; with it off, it is the top-level resource (a plain
 * object). That is the process-wide switch itself, unlike heap statistics (too coarse for 72
 * bytes a promise) or `process.binding` (deprecated internals). It runs in a child process,
 * because the test runner's own process may have hooks on for its own reasons, and through the
 * public entry point, as a user's application loads it. The child also turns tracking on
 * itself at the end (a control), so the test fails if the probe ever stops detecting it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { storageScope, tenantA } from "../support/emulator.js";

const clientId = "a5a5a5a5-a5a5-4a5a-8a5a-a5a5a5a5a5a5";
const clientSecret = "async-hooks-regression-secret";
let emulator: EntraEmulator;
let dir: string;

beforeAll(async () => {
  emulator = await startEntraEmulator();
  emulator.registerApplication({ clientId, clientSecret });
  dir = mkdtempSync(join(tmpdir(), "rx-identity-async-hooks-"));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await emulator.stop();
});

interface ChildReport {
  readonly tokenType: string;
  readonly trackedBefore: boolean;
  readonly trackedAfterToken: boolean;
  readonly trackedAfterControl: boolean;
}

/** Runs `script` under tsx and returns the JSON it prints last. */
async function runChild(script: string): Promise<ChildReport> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: {
      ...process.env,
      SECRET: clientSecret,
      AUTHORITY: emulator.authorityHost,
      CA_PEM: emulator.caCertificate,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // The child stops by itself (its timers are unref'd and the credential is closed); these
  // only make sure it never outlives a failed or interrupted test run.
  const killer = (): void => {
    child.kill();
  };
  process.once("exit", killer);
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  process.off("exit", killer);
  if (code !== 0) throw new Error(`child exited with ${String(code)}: ${err}${out}`);
  const last = out.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as ChildReport;
}

it("getting a token leaves async-hook promise tracking off in the user's process", async () => {
  const entry = new URL("../../src/index.ts", import.meta.url).href;
  const script = join(dir, "child.mts");
  writeFileSync(
    script,
    `import { AsyncLocalStorage, executionAsyncResource } from "node:async_hooks";
import { ClientSecretCredential } from ${JSON.stringify(entry)};

// True when the continuation of an await runs as its own async resource: promise tracking.
const tracked = async () => {
  await null;
  return executionAsyncResource() instanceof Promise;
};

const trackedBefore = await tracked();
const credential = new ClientSecretCredential(${JSON.stringify(tenantA)}, ${JSON.stringify(clientId)},
  process.env.SECRET, { authorityHost: process.env.AUTHORITY, ca: process.env.CA_PEM });
const token = await credential.getToken(${JSON.stringify(storageScope)});
const trackedAfterToken = await tracked();
await credential.close();
new AsyncLocalStorage().run(1, () => undefined);
const trackedAfterControl = await tracked();
console.log(JSON.stringify({ tokenType: token.tokenType, trackedBefore, trackedAfterToken, trackedAfterControl }));
`,
  );
  const before = emulator.requestCount({ clientId });

  const report = await runChild(script);

  expect(report.tokenType).toBe("Bearer");
  expect(emulator.requestCount({ clientId }) - before).toBe(1);
  expect(report.trackedBefore).toBe(false);
  expect(report.trackedAfterToken).toBe(false);
  expect(report.trackedAfterControl).toBe(true);
});

it("no library source imports node:async_hooks", () => {
  const root = fileURLToPath(new URL("../../src/", import.meta.url));
  const offenders = readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .filter((file) => /["'](node:)?async_hooks["']/.test(readFileSync(join(root, file), "utf8")));

  expect(offenders).toEqual([]);
});
