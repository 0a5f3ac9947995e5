/**
 * `npm start`: the demo of rx-identity against the embedded Entra ID emulator, the same as
 * `rx-identity demo`. Arguments after `npm start --` are the demo's (`--duration 120`).
 */
import { main } from "./main.js";

const controller = new AbortController();
const onSignal = (): void => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

void main({
  argv: ["demo", ...process.argv.slice(2)],
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
}).then((code) => {
  process.exitCode = code;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  // Everything was closed; if a socket or timer still held the process open, say so and
  // fail rather than hang (this timer itself does not keep the process alive).
  setTimeout(() => {
    process.stderr.write("rx-identity demo: something was left running after the demo ended\n");
    process.exit(1);
  }, 5_000).unref();
});
