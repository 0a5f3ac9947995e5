import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  createFileTokenStore,
  defaultCacheDirectory,
  storeKeyOf,
  type StoreLogger,
  type TokenStoreEntry,
} from "../../src/stores/index.js";

const SECRET = "s3cr3t~Value.With-Symbols_0123456789";
const NOW = 1_800_000_000_000;
const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "11111111-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  scopes: ["https://storage.azure.com/.default"],
};
const KEY = storeKeyOf(fields);
const CAE_KEY = storeKeyOf({ ...fields, enableCae: true });
const ENTRY: TokenStoreEntry = {
  token: "eyJ0eXAiOiJKV1QifQ.payload.signature",
  expiresOnTimestamp: NOW + 3_600_000,
};

function capture(): StoreLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warning: (m) => lines.push(m) };
}

let directory: string;
beforeEach(async () => {
  directory = join(await mkdtemp(join(tmpdir(), "rx-identity-file-store-")), "cache");
});
afterEach(async () => {
  await rm(join(directory, ".."), { recursive: true, force: true });
});

function open(options: { secret?: string; logger?: StoreLogger; now?: () => number } = {}) {
  return createFileTokenStore({
    clientSecret: options.secret ?? SECRET,
    directory,
    name: "app",
    now: options.now ?? (() => NOW),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

describe("createFileTokenStore", () => {
  test("a token survives a restart (a new store instance on the same files)", async () => {
    const before = await open();
    await before.write(KEY, ENTRY);
    await before.close();

    const after = await open();

    expect(await after.read(KEY)).toEqual(ENTRY);
    expect(await after.read(CAE_KEY)).toBeUndefined();
  });

  test("keeps CAE and non-CAE tokens in <name>.cae and <name>.nocae, with modes 0700 and 0600, and no token in clear", async () => {
    const store = await open();

    await store.write(KEY, ENTRY);
    await store.write(CAE_KEY, { ...ENTRY, token: "cae-token" });

    expect((await readdir(directory)).sort()).toEqual(["app.cae", "app.nocae"]);
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
    for (const file of ["app.cae", "app.nocae"]) {
      expect((await stat(join(directory, file))).mode & 0o777).toBe(0o600);
      const text = await readFile(join(directory, file), "utf8");
      expect(text).not.toContain("eyJ0eXAi");
      expect(text).not.toContain("cae-token");
      expect(text).not.toContain(SECRET);
    }
    expect(await store.read(CAE_KEY)).toEqual({ ...ENTRY, token: "cae-token" });
  });

  test("prunes expired entries on write and never returns them", async () => {
    let now = NOW;
    const store = await open({ now: () => now });
    const other = storeKeyOf({ ...fields, scopes: ["other"] });
    await store.write(KEY, { ...ENTRY, expiresOnTimestamp: NOW + 1_000 });

    now = NOW + 1_000;
    const expired = await store.read(KEY);
    await store.write(other, ENTRY);

    expect(expired).toBeUndefined();
    const doc = JSON.parse(await readFile(join(directory, "app.nocae"), "utf8")) as {
      entries: Record<string, unknown>;
    };
    expect(Object.keys(doc.entries)).toEqual([other]);
  });

  test("deletes", async () => {
    const store = await open();
    await store.write(KEY, ENTRY);

    await store.delete(KEY);

    expect(await store.read(KEY)).toBeUndefined();
  });

  test("ignores a garbage file with a log line, and replaces it on the next write", async () => {
    const logger = capture();
    const store = await open({ logger });
    await writeFile(join(directory, "app.nocae"), "\u0000garbage{{", { mode: 0o600 });

    const read = await store.read(KEY);
    await store.write(KEY, ENTRY);

    expect(read).toBeUndefined();
    expect(logger.lines.some((l) => /corrupt or foreign \(not JSON\)/.test(l))).toBe(true);
    expect(await store.read(KEY)).toEqual(ENTRY);
  });

  test("ignores a tampered entry, an entry moved to another key, and one sealed with another secret, with log lines", async () => {
    const logger = capture();
    const store = await open({ logger });
    const other = storeKeyOf({ ...fields, scopes: ["other"] });
    await store.write(KEY, ENTRY);
    const path = join(directory, "app.nocae");
    const doc = JSON.parse(await readFile(path, "utf8"));
    const sealed: string = doc.entries[KEY].value;

    doc.entries[other] = doc.entries[KEY]; // moved
    doc.entries[KEY] = { ...doc.entries[KEY], value: sealed.slice(0, -6) + "AAAAAA" }; // tampered
    await writeFile(path, JSON.stringify(doc));
    const wrongSecret = await open({ secret: "another secret", logger });
    await store.write(storeKeyOf({ ...fields, scopes: ["third"] }), ENTRY);

    expect(await store.read(KEY)).toBeUndefined();
    expect(await store.read(other)).toBeUndefined();
    expect(await wrongSecret.read(storeKeyOf({ ...fields, scopes: ["third"] }))).toBeUndefined();
    expect(logger.lines.filter((l) => /ignored \(unauthentic/.test(l))).toHaveLength(2);
    expect(
      logger.lines.filter((l) =>
        /ignored \(sealed under a client secret this process does not hold/.test(l),
      ),
    ).toHaveLength(1);
    expect(logger.lines.join("\n")).not.toContain(SECRET);
  });

  test("rejects keys not made by storeKeyOf and names outside the safe set", async () => {
    const store = await open();

    await expect(store.read("../../etc/passwd")).rejects.toThrow(/storeKeyOf/);
    await expect(
      createFileTokenStore({ clientSecret: SECRET, directory, name: "../escape" }),
    ).rejects.toThrow(/`name`/);
  });

  test("two processes writing at once leave a valid file holding every entry", async () => {
    const writer = fileURLToPath(new URL("./fixtures/file-writer.ts", import.meta.url));
    const count = 40;

    const children = ["a", "b"].map((id) =>
      spawn(process.execPath, ["--import", "tsx", writer, directory, id, String(count)], {
        stdio: ["pipe", "inherit", "inherit"],
      }),
    );
    const codes = await Promise.all(
      children.map(async (child) => (await once(child, "exit"))[0] as number | null),
    );

    expect(codes).toEqual([0, 0]);
    const store = await createFileTokenStore({
      clientSecret: "fleet-secret",
      directory,
      name: "shared",
    });
    const tokens = await Promise.all(
      ["a", "b"].flatMap((id) =>
        Array.from({ length: count }, async (_, i) => {
          const key = storeKeyOf({
            authorityHost: "https://login.microsoftonline.com",
            clientId: "app",
            tenantId: "tenant",
            scopes: [`scope-${id}-${i}`],
          });
          return (await store.read(key))?.token;
        }),
      ),
    );
    expect(tokens.filter((t) => t !== undefined)).toHaveLength(2 * count);
    expect((await readdir(directory)).sort()).toEqual(["shared.nocae"]);
  });

  test("the default directory follows XDG_CACHE_HOME, else ~/.cache", () => {
    expect(defaultCacheDirectory({ XDG_CACHE_HOME: "/var/cache/me" })).toBe(
      "/var/cache/me/rx-identity",
    );
    expect(defaultCacheDirectory({ XDG_CACHE_HOME: "relative" })).toMatch(
      /\/\.cache\/rx-identity$/,
    );
  });
});
