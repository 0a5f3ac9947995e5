#!/usr/bin/env node
/**
 * The executable behind the `rx-identity` command. Ctrl-C (SIGINT) and SIGTERM abort the
 * running command, which then closes its credential or emulator and exits 0; a second
 * Ctrl-C exits at once.
 */
import { main } from "./main.js";

// Output to a pipe whose reader is gone (a wrapper that was killed, `| head`) fails with
// EPIPE; unhandled, that error would end the process before the command cleans up.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
}

const controller = new AbortController();
const onSignal = (): void => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

let settled = false;
process.once("exit", (code) => {
  // The command's promise never settled, yet the event loop ran dry: something it waited
  // for was not holding the process open. Report it instead of exiting 0 silently.
  if (!settled && code === 0) {
    process.stderr.write("rx-identity: the command stopped before it finished\n");
    process.exitCode = 1;
  }
});

// No top-level await, so the file also builds as CommonJS.
void main({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
}).then((code) => {
  settled = true;
  process.exitCode = code;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
});
