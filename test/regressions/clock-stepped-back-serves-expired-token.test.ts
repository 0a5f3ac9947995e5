/**
 * Regression (issue #18, item 6): the registry's deadlines (expiry, refresh, the forced
 * window, the `getToken` fast path) were on the wall clock, so after `Date.now()` stepped
 * back 60 s (an NTP step, a VM resumed from a snapshot) a token was served after its real
 * expiry. Deadlines are now on a monotonic clock anchored when the token is received, which
 * also follows the wall clock forward: a forward jump still refreshes at once.
 *
 * Each case runs a real child process (`fixtures/clock-step-child.ts`) that steps its own
 * `Date.now()`, against the HTTPS emulator in this process, whose clock is not stepped: a
 * token's `exp` says whether it is really still valid. Tokens live 2 s.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const CHILD = fileURLToPath(new URL("./fixtures/clock-step-child.ts", import.meta.url));
const secret = "clock-step-secret-0b7e";
let emulator: EntraEmulator;

beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});

/** Runs the child with its clock stepped by `stepMs` after the first token. */
async function run(
  stepMs: number,
  waitMs: number,
): Promise<{ first: string; second: string; clientId: string }> {
  const clientId = `clock-${randomUUID()}`;
  emulator.registerApplication({ clientId, clientSecret: secret, tokenLifetimeSeconds: 2 });
  const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
    env: {
      ...process.env,
      AUTHORITY: emulator.authorityHost,
      CA_PEM: emulator.caCertificate,
      CLIENT_ID: clientId,
      SECRET: secret,
      STEP_MS: String(stepMs),
      WAIT_MS: String(waitMs),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 25_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
  return { ...(JSON.parse(out) as { first: string; second: string }), clientId };
}

test("a wall clock stepped back 60 s does not serve a token after its real expiry", async () => {
  // Act: the first token lives 2 s; the clock steps back 60 s; 2.5 s of real time later…
  const { first, second, clientId } = await run(-60_000, 2_500);

  // Assert: …the first token has really expired (its `exp` on this process's clock, which
  // was not stepped), and getToken gave a new one that has not.
  const expOf = (token: string): number => Number(emulator.verifyToken(token)["exp"]) * 1_000;
  expect(expOf(first)).toBeLessThan(Date.now());
  expect(second).not.toBe(first);
  expect(expOf(second)).toBeGreaterThan(expOf(first));
  expect(emulator.verifyToken(second)).toMatchObject({ appid: clientId });
  expect(emulator.requestCount({ clientId })).toBe(2);
}, 30_000);

test("a wall clock jumping 60 s forward still refreshes at once", async () => {
  // Act: the clock jumps forward 60 s just after the first token (2 s life) arrived.
  const { first, second, clientId } = await run(60_000, 0);

  // Assert: the next getToken did not serve the token the wall clock says has expired.
  expect(second).not.toBe(first);
  expect(emulator.requestCount({ clientId })).toBe(2);
}, 30_000);
