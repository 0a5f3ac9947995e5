import { randomBytes, randomUUID } from "node:crypto";
import { parseCommandArgs, parseNumberFlag } from "../support/args.js";
import type { Options } from "../support/args.js";
import { untilAborted, type Command } from "../support/context.js";
import { colourWanted, createPalette, formatElapsed } from "../support/format.js";

const help = `Usage: rx-identity emulator [options]

Runs the local Entra ID emulator (HTTPS on 127.0.0.1) for development, with one registered
application, until Ctrl-C, SIGTERM, or the exit of the process that started it (such as npx). It prints the variables to paste into another shell so that
\`rx-identity token\`, your program or any Azure SDK credential uses it, then one line per
token request it answers.

Options:
  --port P           TCP port on 127.0.0.1 (default: 0, a free port)
  --lifetime S       token lifetime in seconds (default: 3599)
  --refresh-in S     refresh_in sent with tokens, in seconds (default: not sent)
  --tenant T         the tenant id to print (default: a random GUID; any tenant works)
  --client-id ID     the application's client id (default: a random GUID)
  -h, --help         show this help

The client secret printed is the emulator's own, generated at start: it is no real secret.
`;

const options = {
  port: { type: "string" },
  lifetime: { type: "string" },
  "refresh-in": { type: "string" },
  tenant: { type: "string" },
  "client-id": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/** How often the emulator looks whether the process that started it is still there. */
const parentCheckMs = 500;

/**
 * Aborts when this process's parent exits. `npx rx-identity emulator &` followed by
 * `kill $!` kills npm's wrapper process, which does not pass SIGTERM on to the command it
 * started: the emulator would live on as an orphan (re-parented, `process.ppid` changes),
 * holding its port and its CA folder. Noticing the change, it stops as after Ctrl-C.
 */
function watchParent(): { signal: AbortSignal; parent: number; stop: () => void } {
  const controller = new AbortController();
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) controller.abort();
  }, parentCheckMs);
  // The server keeps the process alive; this check must not.
  timer.unref();
  return { signal: controller.signal, parent, stop: () => clearInterval(timer) };
}

/**
 * `rx-identity emulator`: the local Entra ID emulator, for development, until Ctrl-C.
 *
 * @example
 * ```sh
 * rx-identity emulator --lifetime 60 --refresh-in 30
 * ```
 */
export const emulatorCommand: Command = {
  name: "emulator",
  summary: "run the local Entra ID emulator until Ctrl-C",
  help,
  synopsis:
    "rx-identity emulator [--port P] [--lifetime S] [--refresh-in S] [--tenant T] [--client-id ID]",
  options,
  async run({ argv, env, stdout, signal }) {
    const { values } = parseCommandArgs("emulator", argv, options);
    if (values.help === true) {
      stdout.write(help);
      return 0;
    }
    const port =
      values.port === undefined
        ? 0
        : parseNumberFlag("--port", values.port, { max: 65_535, integer: true });
    const lifetime =
      values.lifetime === undefined
        ? undefined
        : parseNumberFlag("--lifetime", values.lifetime, { min: 1, integer: true });
    const refreshIn =
      values["refresh-in"] === undefined
        ? undefined
        : parseNumberFlag("--refresh-in", values["refresh-in"], { min: 1, integer: true });

    const palette = createPalette(colourWanted(stdout, env));
    // Loaded on demand so that --help and usage errors answer at once.
    const { startEntraEmulator } = await import("../../testing/index.js");
    const emulator = await startEntraEmulator({
      port,
      ...(lifetime === undefined ? {} : { tokenLifetimeSeconds: lifetime }),
      ...(refreshIn === undefined ? {} : { refreshInSeconds: refreshIn }),
    });
    const started = Date.now();
    try {
      const tenant = values.tenant ?? randomUUID();
      const clientId = values["client-id"] ?? randomUUID();
      const clientSecret = randomBytes(24).toString("base64url");
      emulator.registerApplication({ clientId, clientSecret });

      stdout.write(
        `${palette.bold("Entra ID emulator")} listening on ${palette.cyan(emulator.authorityHost)}\n` +
          `  tenant         ${tenant} (any tenant id works)\n` +
          `  client id      ${clientId}\n` +
          `  client secret  ${clientSecret} (the emulator's, generated at start)\n` +
          `  CA file        ${emulator.caFile}\n` +
          `  tokens live    ${lifetime ?? 3599}s${refreshIn === undefined ? "" : `, refresh_in ${refreshIn}s`}\n` +
          `\nPaste into another shell:\n\n` +
          `export AZURE_AUTHORITY_HOST=${emulator.authorityHost}\n` +
          `export AZURE_TENANT_ID=${tenant}\n` +
          `export AZURE_CLIENT_ID=${clientId}\n` +
          `export AZURE_CLIENT_SECRET=${clientSecret}\n` +
          `export RX_IDENTITY_CA_FILE=${emulator.caFile}\n` +
          `# other programs (any Azure SDK) trust it when started with NODE_EXTRA_CA_CERTS=${emulator.caFile}\n` +
          `\nthen: rx-identity token --scope https://storage.azure.com/.default\n` +
          palette.dim("Ctrl-C to stop.\n"),
      );

      // One line per token request, in arrival order, until Ctrl-C, SIGTERM, or the death of
      // the process that started this one.
      const parentGone = watchParent();
      const stopped = untilAborted(AbortSignal.any([signal, parentGone.signal])).finally(
        parentGone.stop,
      );
      let printed = 0;
      for (;;) {
        const next = await Promise.race([
          emulator.waitForRequests(printed + 1).then(() => true),
          stopped.then(() => false),
        ]);
        if (!next) break;
        for (const request of emulator.requests.slice(printed)) {
          printed += 1;
          const status =
            request.status === 200 ? palette.green("200") : palette.yellow(String(request.status));
          stdout.write(
            `${palette.dim(formatElapsed(request.at - started))} token request tenant=${request.tenant} ` +
              `client=${request.clientId} scopes=${request.scopes.join(" ")}` +
              (request.claims === undefined ? "" : ` claims=${request.claims}`) +
              (request.clientCapabilities.length > 0
                ? ` cae=${request.clientCapabilities.join(",")}`
                : "") +
              ` -> ${status}\n`,
          );
        }
      }
      stdout.write(
        parentGone.signal.aborted
          ? `the parent process (pid ${parentGone.parent}) exited: stopping the emulator\n`
          : "stopping the emulator\n",
      );
      return 0;
    } finally {
      await emulator.stop();
    }
  },
};
