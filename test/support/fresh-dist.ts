/**
 * Vitest global setup: makes sure `dist/` holds the current sources before any test starts
 * a real process from it (the one-shot scripts import `rx-identity`, which resolves to
 * `dist/`, and the CLI runs as `dist/cli/bin.js`, as a user's would). `npm ci` and
 * `npm run build` build it; when a source file is newer than the build (during
 * development), the ESM files are rebuilt here without declarations, in well under a
 * second, instead of testing a stale program.
 *
 * Real processes run the build, not `tsx`: tsx's loader hooks run on a thread that keeps
 * the event loop alive, which hid the very bug the one-shot tests are there to catch (a
 * script exiting 0 while its awaited token was still pending).
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Options } from "tsup";
import config from "../../tsup.config.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const built = ["dist/index.js", "dist/testing/index.js", "dist/cli/bin.js"];

function newestSource(directory: string): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function oldestBuild(): number {
  try {
    return Math.min(...built.map((file) => statSync(join(root, file)).mtimeMs));
  } catch {
    return 0;
  }
}

export default async function setup(): Promise<void> {
  if (oldestBuild() >= newestSource(join(root, "src"))) return;
  const entries = (Array.isArray(config) ? config : [config]) as Options[];
  for (const options of entries) {
    await build({ ...options, format: ["esm"], dts: false, silent: true, config: false });
  }
}
