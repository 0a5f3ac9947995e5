import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { lock } from "proper-lockfile";
import { describeOpenFailure } from "./entry-cipher.js";
import { defaultStoreLogger, shortKey } from "./logger.js";
import { followStoreSecret, type StoreSecret } from "./store-secret.js";
import { partitionOf, STORE_VERSION, type StorePartition } from "./store-key.js";
import type { StoreLogger, TokenStore } from "./token-store.js";

/**
 * The persistent token cache behind `tokenCachePersistenceOptions: { enabled: true, name }`:
 * a restarted service finds the tokens it already had instead of asking Entra ID again.
 *
 * Layout, like Azure Identity's (one cache per name, CAE tokens apart): `<directory>/<name>.nocae`
 * and `<directory>/<name>.cae`, each a JSON document
 * `{ "version": 1, "entries": { "<store key>": { "expiresOnTimestamp": n, "value": "v1.…" } } }`
 * whose values are sealed by {@link createEntryCipher}. The expiry is kept in clear next to
 * each value so expired entries of any credential can be pruned; it is checked against the
 * sealed one when an entry is opened.
 */

/** The cache name used when none is given, as `tokenCachePersistenceOptions.name`. */
export const DEFAULT_CACHE_NAME = "rx-identity";

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Options of {@link createFileTokenStore}. */
export interface FileTokenStoreOptions {
  /**
   * The client secret the entries are sealed with (only derived keys are kept), or an
   * `Observable<string>` of the current one: new entries are sealed under the newest secret,
   * and entries sealed under an earlier one stay readable while they are valid.
   */
  readonly clientSecret: StoreSecret;
  /**
   * The cache name: letters, digits, `.`, `_`, `-`.
   * @default "rx-identity"
   */
  readonly name?: string | undefined;
  /**
   * The directory of the cache files, created with mode 0700 if missing.
   * @default {@link defaultCacheDirectory}()
   */
  readonly directory?: string | undefined;
  /** @default the `@azure/logger` client logger `rx-identity:stores` */
  readonly logger?: StoreLogger | undefined;
  /** The clock for expiry, epoch milliseconds. @default Date.now */
  readonly now?: (() => number) | undefined;
  /**
   * How long a lock left by a dead process blocks others before it is taken over
   * (proper-lockfile's `stale`; a live holder refreshes it every half of this).
   * @default 10_000
   */
  readonly lockStaleMs?: number | undefined;
}

/**
 * The per-user cache directory: `%LOCALAPPDATA%\rx-identity` on Windows, otherwise
 * `$XDG_CACHE_HOME/rx-identity`, else `~/.cache/rx-identity` (the XDG base directory rule).
 *
 * @example
 * ```ts
 * defaultCacheDirectory(); // "/home/app/.cache/rx-identity"
 * ```
 */
export function defaultCacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (process.platform === "win32" && env["LOCALAPPDATA"]) {
    return join(env["LOCALAPPDATA"], "rx-identity");
  }
  const xdg = env["XDG_CACHE_HOME"];
  // The XDG spec says a relative $XDG_CACHE_HOME is invalid and must be ignored.
  const base = xdg !== undefined && xdg.startsWith("/") ? xdg : join(homedir(), ".cache");
  return join(base, "rx-identity");
}

interface StoredRecord {
  readonly expiresOnTimestamp: number;
  readonly value: string;
}

type Entries = Record<string, StoredRecord>;

function isRecord(value: unknown): value is StoredRecord {
  if (typeof value !== "object" || value === null) return false;
  const { expiresOnTimestamp, value: sealed } = value as Record<string, unknown>;
  return (
    typeof expiresOnTimestamp === "number" &&
    Number.isFinite(expiresOnTimestamp) &&
    typeof sealed === "string"
  );
}

/** Parses a cache document: its entries, or why it is not one (then it is ignored, not used). */
function parseDocument(text: string): { entries: Entries } | { problem: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { problem: "not JSON" };
  }
  if (typeof doc !== "object" || doc === null) return { problem: "not a cache document" };
  const { version, entries } = doc as Record<string, unknown>;
  if (version !== STORE_VERSION) return { problem: `unknown version ${JSON.stringify(version)}` };
  if (typeof entries !== "object" || entries === null || Array.isArray(entries)) {
    return { problem: "no entries" };
  }
  const valid: Entries = Object.create(null) as Entries;
  for (const [key, record] of Object.entries(entries)) {
    if (isRecord(record)) valid[key] = record;
  }
  return { entries: valid };
}

function errnoOf(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String(error.code)
    : undefined;
}

/**
 * A token store in per-user files, sealed with the client secret, safe with several
 * processes at once: writes take a `proper-lockfile` lock, rewrite the document into a
 * temporary file (mode 0600) and rename it over the old one, so readers (who take no lock)
 * see either the old or the new document, never half of one. Expired entries are pruned on
 * every write. A corrupt, foreign or tampered file or entry is ignored with a warning.
 *
 * @example
 * ```ts
 * const store = await createFileTokenStore({ clientSecret, name: "my-service" });
 * const entry = await store.read(storeKeyOf(fields)); // a token from before the restart
 * ```
 */
export async function createFileTokenStore(options: FileTokenStoreOptions): Promise<TokenStore> {
  const name = options.name ?? DEFAULT_CACHE_NAME;
  if (!NAME_PATTERN.test(name)) {
    throw new TypeError(
      `Expected the token cache \`name\` to be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(name)}.`,
    );
  }
  const directory = options.directory ?? defaultCacheDirectory();
  const logger = options.logger ?? defaultStoreLogger;
  const now = options.now ?? Date.now;
  const ciphers = followStoreSecret(options.clientSecret, { now, logger, name: "token cache" });
  const stale = options.lockStaleMs ?? 10_000;

  await mkdir(directory, { recursive: true, mode: 0o700 });
  const mode = (await stat(directory)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger.warning(
      `rx-identity token cache directory ${directory} is accessible to other users (mode ${mode.toString(8)}); entries are encrypted, but consider chmod 700.`,
    );
  }

  const pathOf = (partition: StorePartition): string => join(directory, `${name}.${partition}`);
  // Writes of this process to one file run one after another: proper-lockfile would make
  // them wait for each other anyway, but by polling.
  const queues = new Map<string, Promise<unknown>>();
  let closed = false;

  function fileOf(key: string): string {
    const partition = partitionOf(key);
    if (partition === undefined) {
      throw new TypeError(
        `Expected a store key made by storeKeyOf() ("cae.…" or "nocae.…"); got ${JSON.stringify(shortKey(key))}.`,
      );
    }
    return pathOf(partition);
  }

  async function load(file: string): Promise<Entries> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if (errnoOf(error) === "ENOENT") return Object.create(null) as Entries;
      logger.warning(
        `rx-identity token cache ${file} could not be read (${errnoOf(error)}); ignoring it.`,
      );
      return Object.create(null) as Entries;
    }
    const parsed = parseDocument(text);
    if ("problem" in parsed) {
      logger.warning(
        `rx-identity token cache ${file} is corrupt or foreign (${parsed.problem}); ignoring it. It is replaced on the next write.`,
      );
      return Object.create(null) as Entries;
    }
    return parsed.entries;
  }

  async function save(file: string, entries: Entries): Promise<void> {
    const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    const text = JSON.stringify({ version: STORE_VERSION, entries });
    try {
      await writeFile(temp, text, { mode: 0o600, flag: "wx" });
      await rename(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  function update(key: string, change: (entries: Entries) => void): Promise<void> {
    if (closed) return Promise.reject(closedError());
    let file: string;
    try {
      file = fileOf(key);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const run = async (): Promise<void> => {
      const release = await lock(file, {
        realpath: false, // the file may not exist yet
        stale,
        retries: { retries: 200, factor: 1.3, minTimeout: 5, maxTimeout: 200, randomize: true },
        // The default throws from a timer, which would crash the process.
        onCompromised: (error) =>
          logger.warning(
            `rx-identity token cache lock on ${file} was compromised: ${error.message}`,
          ),
      });
      try {
        const entries = await load(file);
        const at = now();
        for (const [k, record] of Object.entries(entries)) {
          if (record.expiresOnTimestamp <= at) delete entries[k];
        }
        change(entries);
        await save(file, entries);
      } finally {
        await release().catch(() => undefined);
      }
    };
    const previous = queues.get(file) ?? Promise.resolve();
    const next = previous.then(run, run);
    const tail = next.catch(() => undefined);
    queues.set(file, tail);
    void tail.then(() => {
      if (queues.get(file) === tail) queues.delete(file);
    });
    return next;
  }

  return {
    async read(key) {
      if (closed) throw closedError();
      const file = fileOf(key);
      const record = (await load(file))[key];
      if (record === undefined || record.expiresOnTimestamp <= now()) return undefined;
      const opened = (await ciphers.ready()).open(key, record.value);
      if (!opened.ok || opened.entry.expiresOnTimestamp !== record.expiresOnTimestamp) {
        logger.warning(
          `rx-identity token cache ${file}: entry ${shortKey(key)} ignored (${describeOpenFailure(opened.ok ? "unauthentic" : opened.reason)}).`,
        );
        return undefined;
      }
      return opened.entry;
    },
    async write(key, entry) {
      const record: StoredRecord = {
        expiresOnTimestamp: entry.expiresOnTimestamp,
        value: (await ciphers.ready()).seal(key, entry),
      };
      return update(key, (entries) => {
        if (record.expiresOnTimestamp > now()) entries[key] = record;
        else delete entries[key];
      });
    },
    delete(key) {
      return update(key, (entries) => {
        delete entries[key];
      });
    },
    async close() {
      closed = true;
      ciphers.close();
      await Promise.all(queues.values());
    },
  };
}

function closedError(): Error {
  return new Error("The token store is closed; create a new store to keep using it.");
}
