#!/usr/bin/env node
/**
 * The executable behind the `rx-identity` command. Ctrl-C (SIGINT) and SIGTERM abort the
 * running command, which then closes its credential or emulator and exits 0; a second
 * Ctrl-C exits at once.
 */
import { main } from "./main.js";

const controller = new AbortController();
const onSignal = (): void => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// No top-level await, so the file also builds as CommonJS.
void main({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
}).then((code) => {
  process.exitCode = code;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
});
