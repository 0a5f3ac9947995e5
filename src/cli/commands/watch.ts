import type { AccessToken } from "@azure/core-auth";
import type { Subscription } from "rxjs";
import { parseCommandArgs, parseNumberFlag, UsageError } from "../support/args.js";
import type { Options } from "../support/args.js";
import type { Command } from "../support/context.js";
import { checkScopes, credentialFromEnvironment } from "../support/environment.js";
import {
  colourWanted,
  createPalette,
  formatDuration,
  formatElapsed,
  redactToken,
} from "../support/format.js";
import { formatEvent, formatStatus } from "../support/observe.js";

const help = `Usage: rx-identity watch --scope SCOPE [options]

Subscribes to credential.token$(scopes) for the AZURE_* credentials and prints one line per
token as refreshes happen (tokens redacted), until Ctrl-C or --count tokens.

Options:
  --scope SCOPE      the scope to watch (repeatable: one token for all of them)
  --tenant TENANT    the tenant to authenticate in (default: AZURE_TENANT_ID)
  --cae              ask for CAE-capable tokens (client capability cp1)
  --ca-file FILE     PEM file of extra CAs to trust (default: RX_IDENTITY_CA_FILE)
  --secret-file FILE read the client secret from FILE, following it as it is rotated
                     (default: AZURE_CLIENT_SECRET_FILE, else AZURE_CLIENT_SECRET)
  --count N          stop after N tokens (default: run until Ctrl-C)
  --events           also print credential.events$ (acquisitions, failures, retries, stale
                     serving, the token store) and credential.status() after each token
  -h, --help         show this help

Example:
  rx-identity watch --scope https://graph.microsoft.com/.default
`;

const options = {
  scope: { type: "string", multiple: true },
  tenant: { type: "string" },
  cae: { type: "boolean" },
  "ca-file": { type: "string" },
  "secret-file": { type: "string" },
  count: { type: "string" },
  events: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/**
 * `rx-identity watch`: a line per token as `token$` emits it.
 *
 * @example
 * ```sh
 * rx-identity watch --scope https://storage.azure.com/.default --count 3
 * ```
 */
export const watchCommand: Command = {
  name: "watch",
  summary: "print a line per token as token$ refreshes it",
  help,
  synopsis:
    "rx-identity watch --scope SCOPE... [--tenant TENANT] [--cae] [--ca-file FILE] [--secret-file FILE] [--count N] [--events]",
  options,
  async run({ argv, env, stdout, stderr, signal }) {
    const { values } = parseCommandArgs("watch", argv, options);
    if (values.help === true) {
      stdout.write(help);
      return 0;
    }
    if (values.scope === undefined || values.scope.length === 0) {
      throw new UsageError(
        "watch: --scope is required (e.g. --scope https://storage.azure.com/.default)",
      );
    }
    const scopes = checkScopes(values.scope);
    const count =
      values.count === undefined
        ? Number.POSITIVE_INFINITY
        : parseNumberFlag("--count", values.count, { min: 1, integer: true });

    const palette = createPalette(colourWanted(stdout, env));
    const credential = await credentialFromEnvironment(env, {
      tenantId: values.tenant,
      caFile: values["ca-file"],
      secretFile: values["secret-file"],
    });
    const started = Date.now();
    const until = Number.isFinite(count)
      ? `until ${count} token${count === 1 ? "" : "s"}`
      : "(Ctrl-C to stop)";
    stdout.write(`${palette.dim(formatElapsed(0))} watching ${scopes.join(" ")} ${until}\n`);
    let seen = 0;
    const showEvents = values.events === true;
    const stamp = (): string => palette.dim(formatElapsed(Date.now() - started));
    const events = showEvents
      ? credential.events$.subscribe((event) => {
          const text = formatEvent(event, Date.now());
          if (text !== undefined) stdout.write(`${stamp()} ${text}\n`);
        })
      : undefined;
    try {
      const failure = await new Promise<unknown>((resolve) => {
        const holder: { subscription?: Subscription } = {};
        let stopped = false;
        // The credential's refresh timers never keep Node alive (a script that calls getToken
        // once must exit at once), so a command that waits for refreshes holds the process.
        const keepAlive = setInterval(() => undefined, 1 << 30);
        const stop = (result: unknown): void => {
          if (stopped) return;
          stopped = true;
          clearInterval(keepAlive);
          signal.removeEventListener("abort", onAbort);
          // Deferred: `next` may run synchronously inside `subscribe`, before `subscription` is set.
          queueMicrotask(() => holder.subscription?.unsubscribe());
          resolve(result);
        };
        const onAbort = (): void => stop(undefined);
        signal.addEventListener("abort", onAbort, { once: true });
        const subscription = credential
          .token$(scopes, values.cae === true ? { enableCae: true } : {})
          .subscribe({
            next: (token: AccessToken) => {
              if (stopped) return;
              seen += 1;
              const now = Date.now();
              const refreshAt = token.refreshAfterTimestamp;
              stdout.write(
                `${palette.dim(formatElapsed(now - started))} ${palette.green(`token #${seen}`)} ` +
                  `${redactToken(token.token)} ` +
                  (refreshAt === undefined
                    ? ""
                    : `refreshes in ${formatDuration(refreshAt - now)}, `) +
                  `expires in ${formatDuration(token.expiresOnTimestamp - now)} ` +
                  palette.dim(`(${new Date(token.expiresOnTimestamp).toISOString()})`) +
                  "\n",
              );
              if (showEvents) {
                for (const text of formatStatus(credential.status())) {
                  stdout.write(`${stamp()} ${text}\n`);
                }
              }
              if (seen >= count) stop(undefined);
            },
            error: (error: unknown) => stop(error),
            complete: () => stop(undefined),
          });
        holder.subscription = subscription;
        if (stopped) subscription.unsubscribe();
      });
      if (failure !== undefined) {
        throw failure instanceof Error ? failure : new Error("token$ failed", { cause: failure });
      }
      stderr.write(
        `${seen} token${seen === 1 ? "" : "s"} in ${formatDuration(Date.now() - started)}\n`,
      );
      return 0;
    } finally {
      events?.unsubscribe();
      await credential.close();
    }
  },
};
