/**
 * secretFromFile on real files on disk, in real time (a file watcher has no virtual clock),
 * with a short debounce; every wait is bounded. Each way a secret really changes on disk:
 * the kubelet's `..data` symlink swap, an editor's write-then-rename, an in-place write, a
 * file deleted and created again; and what a missing, empty or unreadable file does.
 */
import { AzureLogger, setLogLevel } from "@azure/logger";
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom, type Subscription } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { secretFromFile } from "../../src/credential/secret-from-file.js";
import { isCredentialUnavailableError } from "../../src/errors/index.js";

const options = { debounceMs: 30, pollIntervalMs: 0 };
let folder: string;
let subscription: Subscription | undefined;
let logs: string[];
let original: typeof AzureLogger.log;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "rx-identity-secret-"));
  logs = [];
  original = AzureLogger.log;
  AzureLogger.log = (...args: unknown[]) => {
    logs.push(args.map(String).join(" "));
  };
  setLogLevel("info");
});
afterEach(async () => {
  subscription?.unsubscribe();
  subscription = undefined;
  AzureLogger.log = original;
  setLogLevel(undefined);
  await rm(folder, { recursive: true, force: true });
});

/** Subscribes and returns the values seen so far and a bounded wait for the n-th one. */
function follow(path: string): {
  values: string[];
  errors: unknown[];
  until: (count: number) => Promise<void>;
} {
  const values: string[] = [];
  const errors: unknown[] = [];
  subscription = secretFromFile(path, options).subscribe({
    next: (value) => values.push(value),
    error: (error: unknown) => errors.push(error),
  });
  const until = async (count: number): Promise<void> => {
    const deadline = Date.now() + 3_000;
    while (values.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} values within 3 s, got ${JSON.stringify(values)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { values, errors, until };
}

const quiet = (ms = 300): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("secretFromFile on real files", () => {
  it("follows a Kubernetes secret volume as the kubelet swaps the ..data symlink", async () => {
    // The kubelet's layout: client-secret -> ..data/client-secret, ..data -> ..<timestamp>.
    await mkdir(join(folder, "..2026_12_01_10_00_00.1"));
    await writeFile(join(folder, "..2026_12_01_10_00_00.1", "client-secret"), "first-secret\n");
    await symlink("..2026_12_01_10_00_00.1", join(folder, "..data"));
    await symlink(join("..data", "client-secret"), join(folder, "client-secret"));
    const seen = follow(join(folder, "client-secret"));
    await seen.until(1);

    // The swap: a new timestamped directory, ..data_tmp renamed over ..data, the old one removed.
    await mkdir(join(folder, "..2026_12_01_10_05_00.2"));
    await writeFile(join(folder, "..2026_12_01_10_05_00.2", "client-secret"), "second-secret\n");
    await symlink("..2026_12_01_10_05_00.2", join(folder, "..data_tmp"));
    await rename(join(folder, "..data_tmp"), join(folder, "..data"));
    await rm(join(folder, "..2026_12_01_10_00_00.1"), { recursive: true });
    await seen.until(2);
    // And once more, so the watch survived the first swap.
    await mkdir(join(folder, "..2026_12_01_10_10_00.3"));
    await writeFile(join(folder, "..2026_12_01_10_10_00.3", "client-secret"), "third-secret");
    await symlink("..2026_12_01_10_10_00.3", join(folder, "..data_tmp"));
    await rename(join(folder, "..data_tmp"), join(folder, "..data"));
    await rm(join(folder, "..2026_12_01_10_05_00.2"), { recursive: true });
    await seen.until(3);
    await quiet();

    expect(seen.values).toEqual(["first-secret", "second-secret", "third-secret"]);
    expect(seen.errors).toEqual([]);
  });

  it("follows an editor's write-then-rename", async () => {
    const path = join(folder, "secret.txt");
    await writeFile(path, "before-rename");
    const seen = follow(path);
    await seen.until(1);

    await writeFile(join(folder, ".secret.txt.swp"), "after-rename\n");
    await rename(join(folder, ".secret.txt.swp"), path);
    await seen.until(2);
    await quiet();

    expect(seen.values).toEqual(["before-rename", "after-rename"]);
  });

  it("follows an in-place write, and never hands out a half-written file", async () => {
    const path = join(folder, "secret.txt");
    await writeFile(path, "original-secret");
    const seen = follow(path);
    await seen.until(1);

    // Written in two parts, closer together than the debounce: only the whole one is read.
    await writeFile(path, "replaced-");
    await new Promise((resolve) => setTimeout(resolve, 5));
    await writeFile(path, "replaced-secret-in-full\n", { flag: "w" });
    await seen.until(2);
    await quiet();

    expect(seen.values).toEqual(["original-secret", "replaced-secret-in-full"]);
  });

  it("a file deleted and created again: the last good secret stays, one warning, then the new one", async () => {
    const path = join(folder, "secret.txt");
    await writeFile(path, "kept-secret");
    const seen = follow(path);
    await seen.until(1);

    await unlink(path);
    await quiet(700);
    const whileMissing = [...seen.values];
    await writeFile(path, "recreated-secret");
    await seen.until(2);

    expect(whileMissing).toEqual(["kept-secret"]);
    expect(seen.values).toEqual(["kept-secret", "recreated-secret"]);
    expect(seen.errors).toEqual([]);
    const warnings = logs.filter((line) => line.includes("does not exist (ENOENT)"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("stays in use");
    expect(logs.join("\n")).not.toMatch(/kept-secret|recreated-secret/);
  });

  it("an emptied file keeps the last good secret and logs it; the same content again is no new value", async () => {
    const path = join(folder, "secret.txt");
    await writeFile(path, "steady-secret");
    const seen = follow(path);
    await seen.until(1);

    await writeFile(path, "   \n");
    await quiet(700);
    await writeFile(path, "steady-secret\n");
    await quiet(500);

    expect(seen.values).toEqual(["steady-secret"]);
    expect(logs.some((line) => line.includes("is empty"))).toBe(true);
    expect(logs.some((line) => line.includes("readable again"))).toBe(true);
  });

  it("missing, empty or unreadable at the start: a typed error naming the file and why", async () => {
    await writeFile(join(folder, "empty"), "\n\t ");
    await mkdir(join(folder, "a-directory"));
    const failure = (name: string): Promise<unknown> =>
      firstValueFrom(secretFromFile(join(folder, name), options)).catch((error: unknown) => error);

    const missing = await failure("missing");
    const empty = await failure("empty");
    const unreadable = await failure("a-directory");

    for (const error of [missing, empty, unreadable]) {
      expect(isCredentialUnavailableError(error)).toBe(true);
    }
    expect((missing as Error).message).toContain(
      `${join(folder, "missing")} does not exist (ENOENT)`,
    );
    expect((empty as Error).message).toContain(`${join(folder, "empty")} is empty`);
    expect((unreadable as Error).message).toContain("cannot be read (EISDIR)");
  });

  it("refuses bad options before touching the disk", () => {
    expect(() => secretFromFile("")).toThrow(/Expected `path` to be the path/);
    expect(() => secretFromFile("x", { debounceMs: -1 })).toThrow(
      "Expected `debounceMs` to be a non-negative number of milliseconds, got -1.",
    );
  });
});
