/**
 * The persistent file cache (`tokenCachePersistenceOptions`) across real processes: each
 * child is a new `node` process with a `ClientSecretCredential` whose cache lives under a
 * temporary `XDG_CACHE_HOME`, against the HTTPS emulator.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import type { ChildConfig } from "./fixtures/credential-child.js";
import { startChild, type FleetChild } from "./support/children.js";

const tenantId = "f1000000-0000-4000-8000-0000000000f1";
const secret = "file-cache-secret-4d2b";
const storage = "https://storage.azure.com/.default";
const vault = "https://vault.azure.net/.default";

let emulator: EntraEmulator;
let cacheHome: string;

beforeAll(async () => {
  emulator = await startEntraEmulator();
  cacheHome = mkdtempSync(join(tmpdir(), "rx-identity-fleet-"));
});
afterAll(async () => {
  await emulator?.stop();
  if (cacheHome !== undefined) rmSync(cacheHome, { recursive: true, force: true });
});

/** A fresh app registration and a cache name of its own. */
function app(): ChildConfig {
  const clientId = `file-${randomUUID()}`;
  emulator.registerApplication({ clientId, clientSecret: secret });
  return {
    mode: "get",
    authorityHost: emulator.authorityHost,
    caFile: emulator.caFile,
    tenantId,
    clientId,
    clientSecret: secret,
    scopes: [storage],
    persistenceName: `cache-${clientId}`,
  };
}

/** Runs one `get` child to its end: the tokens it printed per scope, its exit code and log. */
async function run(
  config: ChildConfig,
): Promise<{ code: number | null; tokens: Record<string, string>; log: string }> {
  const child: FleetChild = startChild(config, {
    XDG_CACHE_HOME: cacheHome,
    AZURE_LOG_LEVEL: "warning",
  });
  const code = await child.exited;
  const tokens: Record<string, string> = {};
  for (const event of child.events) if (event.type === "token") tokens[event.scope] = event.token;
  return { code, tokens, log: child.stderr() };
}

const cacheFile = (config: ChildConfig): string =>
  join(cacheHome, "rx-identity", `${config.persistenceName as string}.nocae`);

test("a restarted process serves the still-fresh token from the file cache with no request", async () => {
  const config = app();
  const first = await run(config);

  const second = await run(config);

  expect(first.code).toBe(0);
  expect(second.code).toBe(0);
  expect(second.tokens[storage]).toBe(first.tokens[storage]);
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(1);
  // At rest the token is sealed: the file does not hold it in the clear.
  expect(readFileSync(cacheFile(config), "utf8")).not.toContain(first.tokens[storage]);
});

test("two processes writing the cache at once leave a valid file holding both tokens", async () => {
  const config = app();

  const [a, b] = await Promise.all([
    run({ ...config, scopes: [storage] }),
    run({ ...config, scopes: [vault] }),
  ]);
  const reader = await run({ ...config, scopes: [storage, vault] });

  expect([a.code, b.code, reader.code]).toEqual([0, 0, 0]);
  expect(reader.tokens).toEqual({ [storage]: a.tokens[storage], [vault]: b.tokens[vault] });
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(2);
  expect(() => JSON.parse(readFileSync(cacheFile(config), "utf8")) as unknown).not.toThrow();
  // No temporary or lock files are left behind.
  expect(
    readdirSync(join(cacheHome, "rx-identity")).filter((name) =>
      name.startsWith(config.persistenceName as string),
    ),
  ).toEqual([`${config.persistenceName as string}.nocae`]);
});

test("a tampered or truncated cache file is ignored with a log line: a request is made, nothing crashes", async () => {
  const config = app();
  const original = await run(config);
  const file = cacheFile(config);
  const text = readFileSync(file, "utf8");

  // Tampered: one character of the sealed entry changed.
  const document = JSON.parse(text) as {
    entries: Record<string, { value: string; expiresOnTimestamp: number }>;
  };
  for (const record of Object.values(document.entries)) {
    const middle = Math.floor(record.value.length / 2);
    const flipped = record.value[middle] === "A" ? "B" : "A";
    record.value = `${record.value.slice(0, middle)}${flipped}${record.value.slice(middle + 1)}`;
  }
  writeFileSync(file, JSON.stringify(document));
  const afterTamper = await run(config);
  // Truncated: half of the file, as after a crash of a writer that did not rename.
  writeFileSync(file, readFileSync(file, "utf8").slice(0, Math.floor(text.length / 2)));
  const afterTruncation = await run(config);

  expect([original.code, afterTamper.code, afterTruncation.code]).toEqual([0, 0, 0]);
  expect(afterTamper.tokens[storage]).not.toBe(original.tokens[storage]);
  expect(afterTruncation.tokens[storage]).not.toBe(afterTamper.tokens[storage]);
  expect(emulator.requestCount({ clientId: config.clientId })).toBe(3);
  expect(afterTamper.log).toMatch(/ignor/);
  expect(afterTruncation.log).toMatch(/ignor/);
});
