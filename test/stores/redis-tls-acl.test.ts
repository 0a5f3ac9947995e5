/**
 * The Redis token store over TLS with an ACL user, as managed Redis services run: a
 * `redis-server` listening with `--tls-port` only, its certificate issued by a CA this test
 * generates, the `default` user off and a user with a password. The store is given
 * `rediss://user:password@…` and the CA (`tls.ca`).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { generate } from "selfsigned";
import { firstValueFrom, take } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  createRedisTokenStore,
  credentialIdOf,
  isTokenStoreUnavailableError,
  storeKeyOf,
  type RedisTokenStore,
  type RedisTokenStoreOptions,
  type StoreLogger,
} from "../../src/stores/index.js";
import { startRedis, type RunningRedis } from "../support/redis.js";

const SECRET = "tls-client-s3cr3t";
const USER = "fleet";
const PASSWORD = "acl-pa55word-never-logged";
const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "33333333-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://vault.azure.net/.default"],
};
const CREDENTIAL = credentialIdOf(fields);
const KEY = storeKeyOf(fields);
const day = 86_400_000;

/** A CA, and a server certificate for 127.0.0.1 it issued. */
async function authorityAndServer(): Promise<{ ca: string; cert: string; key: string }> {
  const validity = {
    notBeforeDate: new Date(Date.now() - day),
    notAfterDate: new Date(Date.now() + day),
  };
  const ca = await generate([{ name: "commonName", value: "rx-identity test Redis CA" }], {
    keySize: 2048,
    algorithm: "sha256",
    ...validity,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keySize: 2048,
    algorithm: "sha256",
    ...validity,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  return { ca: ca.cert, cert: server.cert, key: server.private };
}

function capture(): StoreLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warning: (m) => lines.push(m) };
}

let directory: string;
let pems: { ca: string; cert: string; key: string };
let redis: RunningRedis;
const stores: RedisTokenStore[] = [];
const address = (): string => redis.url.replace("rediss://", "");

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "rx-identity-redis-tls-"));
  pems = await authorityAndServer();
  const files = {
    caFile: join(directory, "ca.pem"),
    certFile: join(directory, "server.pem"),
    keyFile: join(directory, "server.key"),
  };
  await Promise.all([
    writeFile(files.caFile, pems.ca),
    writeFile(files.certFile, pems.cert),
    writeFile(files.keyFile, pems.key, { mode: 0o600 }),
  ]);
  redis = await startRedis({ tls: files });
  const admin = createClient({ url: redis.url, socket: { tls: true, ca: pems.ca } });
  await admin.connect();
  await admin.sendCommand(["ACL", "SETUSER", USER, "on", `>${PASSWORD}`, "~*", "&*", "+@all"]);
  await admin.sendCommand(["ACL", "SETUSER", "default", "off"]);
  admin.destroy();
}, 30_000);
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await redis?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

async function open(options: Partial<RedisTokenStoreOptions>): Promise<RedisTokenStore> {
  const store = await createRedisTokenStore({
    url: `rediss://${USER}:${PASSWORD}@${address()}`,
    tls: { ca: pems.ca },
    clientSecret: SECRET,
    credentialId: CREDENTIAL,
    connectTimeoutMs: 2_000,
    ...options,
  });
  stores.push(store);
  return store;
}

describe("createRedisTokenStore over TLS with an ACL user", () => {
  test("rediss:// with the CA and the user's password: tokens are shared and every write is heard", async () => {
    const writer = await open({});
    const watcher = await open({});
    const heard = firstValueFrom(watcher.watch(KEY).pipe(take(1)));
    await watcher.read(KEY); // waits for the SUBSCRIBE (its own TLS connection, same user)
    const entry = { token: "over-tls", expiresOnTimestamp: Date.now() + 3_600_000 };

    await writer.write(KEY, entry);

    expect(writer.available).toBe(true);
    expect(await watcher.read(KEY)).toEqual(entry);
    expect(await heard).toEqual({ key: KEY, entry });
  });

  test("without the CA, or with a wrong password, the store is unavailable (no token from it) and logs no password", async () => {
    const logger = capture();
    const untrusted = await open({ tls: {}, logger, connectTimeoutMs: 300 });
    const wrongPassword = await open({
      url: `rediss://${USER}:not-the-password@${address()}`,
      logger,
      connectTimeoutMs: 300,
    });

    const failures = await Promise.all([
      untrusted.read(KEY).catch((e: unknown) => e),
      wrongPassword.read(KEY).catch((e: unknown) => e),
    ]);

    expect(failures.every(isTokenStoreUnavailableError)).toBe(true);
    expect([untrusted.available, wrongPassword.available]).toEqual([false, false]);
    const said = [...logger.lines, ...failures.map((f) => String((f as Error).message))].join("\n");
    expect(said).toMatch(/certificate|self-signed|issuer/i);
    expect(said).toMatch(/WRONGPASS|invalid username-password/i);
    expect(said).not.toContain(PASSWORD);
    expect(said).not.toContain("not-the-password");
  });
});
