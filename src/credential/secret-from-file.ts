import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import pRetry from "p-retry";
import { Observable } from "rxjs";
import { CredentialUnavailableError } from "../errors/index.js";
import { logger } from "./logger.js";
import { secretFingerprint } from "./secret-source.js";

/**
 * A client secret that lives in a file, followed as it really changes on disk.
 *
 * Why `fs.watch` on the parent directory is enough (and no watcher library): a secret file
 * changes in four ways, and each of them is an entry change in the file's own directory,
 * which inotify (and FSEvents, ReadDirectoryChangesW) reports on a watch of that directory:
 * - a Kubernetes secret volume: `client-secret` is a symlink to `..data/client-secret`, and
 *   the kubelet swaps the `..data` symlink atomically (it renames `..data_tmp` over it, then
 *   removes the old timestamped directory). A watch on the file itself would follow the
 *   symlink to the old inode, which then is deleted, so it never fires again (the failure
 *   reported for many watchers, e.g. curiostack #293, cfg4k #65, envoy #3928); the
 *   directory sees the rename of `..data`.
 * - an editor's (or an agent's) write-then-rename: a rename into the directory.
 * - an in-place write: a change event for the file's name.
 * - a delete and re-create: two rename events.
 * The event type differs between systems (configmap-reload #190: a swap reported as a
 * write), so any event in the directory triggers a re-read, and only a changed content is a
 * new value. A poll backstops filesystems that deliver no events (some network mounts).
 */

/** Options of {@link secretFromFile}. */
export interface SecretFromFileOptions {
  /**
   * Quiet time after the last change before the file is read, in ms: a file in the middle of
   * being written is not read.
   * @default 100
   */
  readonly debounceMs?: number | undefined;
  /**
   * How often the file is read even without change events, in ms (for filesystems that
   * deliver none); `0` turns it off.
   * @default 30_000
   */
  readonly pollIntervalMs?: number | undefined;
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_POLL_INTERVAL_MS = 30_000;

function errnoOf(error: unknown): string {
  return typeof error === "object" && error !== null && "code" in error
    ? String(error.code)
    : "unknown error";
}

function fileError(path: string, why: string, cause?: unknown): CredentialUnavailableError {
  return new CredentialUnavailableError(
    `secretFromFile: the client secret file ${path} ${why}: mount or write the client secret there (its trimmed contents are the secret).`,
    cause === undefined ? undefined : { cause },
  );
}

/** Reads the trimmed secret, or rejects with a typed error saying what is wrong. */
async function readSecret(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = errnoOf(error);
    throw fileError(
      path,
      code === "ENOENT" ? "does not exist (ENOENT)" : `cannot be read (${code})`,
      // The errno error names the path and code only; never the contents.
      error,
    );
  }
  const secret = text.trim();
  if (secret === "") throw fileError(path, "is empty");
  return secret;
}

function validMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
    throw new TypeError(
      `Expected \`${name}\` to be a non-negative number of milliseconds, got ${String(value)}.`,
    );
  }
  return value;
}

/**
 * An Observable of the trimmed contents of the secret file at `path`, for the third argument
 * of `ClientSecretCredential`: the current secret on subscribe, then every changed one. It
 * follows a Kubernetes secret volume's `..data` symlink swap, an editor's write-then-rename,
 * an in-place write, and a file deleted and created again, and reads a file only after
 * `debounceMs` without changes. If the first read finds the file missing, empty or
 * unreadable, the Observable fails with a {@link CredentialUnavailableError}; later, such a
 * problem is logged (a warning through `@azure/logger`) and the last good secret stays in
 * use: the stream goes on. Its watcher and timers never keep the process alive.
 *
 * @example
 * ```ts
 * const credential = new ClientSecretCredential(
 *   tenantId,
 *   clientId,
 *   secretFromFile("/var/run/secrets/my-app/client-secret"),
 * );
 * ```
 */
export function secretFromFile(
  path: string,
  options: SecretFromFileOptions = {},
): Observable<string> {
  if (typeof path !== "string" || path.trim() === "") {
    throw new TypeError(
      `Expected \`path\` to be the path of the client secret file, got ${typeof path === "string" ? "an empty string" : typeof path}.`,
    );
  }
  const debounceMs = validMs("debounceMs", options.debounceMs, DEFAULT_DEBOUNCE_MS);
  const pollIntervalMs = validMs(
    "pollIntervalMs",
    options.pollIntervalMs,
    DEFAULT_POLL_INTERVAL_MS,
  );
  const file = resolve(path);
  const directory = dirname(file);

  return new Observable<string>((subscriber) => {
    const controller = new AbortController();
    let last: string | undefined;
    let problem: string | undefined;
    let watcher: FSWatcher | undefined;
    let debounce: NodeJS.Timeout | undefined;
    let reading = false;
    let again = false;

    // A file being replaced may be missing or empty for a moment (between a delete and the
    // create, or a truncate and the write): try a few times before calling it a problem.
    const readSettled = (): Promise<string> =>
      pRetry(() => readSecret(file), {
        retries: 3,
        minTimeout: Math.max(debounceMs, 10),
        factor: 2,
        randomize: false,
        signal: controller.signal,
        shouldRetry: () => !controller.signal.aborted,
      });

    const check = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        const secret = await readSettled();
        if (controller.signal.aborted) return;
        if (problem !== undefined) {
          logger.info(`secretFromFile: the client secret file ${file} is readable again.`);
          problem = undefined;
        }
        if (secret !== last) {
          last = secret;
          subscriber.next(secret);
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        const message = error instanceof Error ? error.message : String(error);
        if (message !== problem) {
          problem = message;
          logger.warning(
            `${message} The last good secret (${last === undefined ? "none" : secretFingerprint(last)}) stays in use; the file is watched for a new one.`,
          );
        }
      } finally {
        reading = false;
        if (again && !controller.signal.aborted) {
          again = false;
          schedule();
        }
      }
    };

    const schedule = (): void => {
      if (debounce !== undefined) clearTimeout(debounce);
      debounce = setTimeout(() => {
        debounce = undefined;
        void check();
      }, debounceMs);
      debounce.unref();
    };

    const startWatching = (): void => {
      if (watcher !== undefined || controller.signal.aborted) return;
      try {
        watcher = watch(directory, { persistent: false }, () => schedule());
        watcher.on("error", () => {
          // The directory went away (an unmounted volume): the poll starts a new watch.
          watcher?.close();
          watcher = undefined;
        });
      } catch {
        watcher = undefined;
      }
    };

    const poll =
      pollIntervalMs > 0
        ? setInterval(() => {
            startWatching();
            void check();
          }, pollIntervalMs)
        : undefined;
    poll?.unref();

    startWatching();
    readSecret(file).then(
      (secret) => {
        if (controller.signal.aborted) return;
        if (last === undefined) {
          last = secret;
          subscriber.next(secret);
        }
      },
      (error: unknown) => subscriber.error(error),
    );

    return () => {
      controller.abort();
      watcher?.close();
      if (debounce !== undefined) clearTimeout(debounce);
      if (poll !== undefined) clearInterval(poll);
    };
  });
}
