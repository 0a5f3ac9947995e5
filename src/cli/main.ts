/**
 * The `rx-identity` command: `token`, `watch`, `emulator` and `demo`, each with `--help`,
 * and `--version`.
 * {@link main} is the whole program minus the process: tests and `bin.ts` call it.
 */
import { readFileSync } from "node:fs";
import {
  isCredentialUnavailableError,
  isInvalidArgumentError,
  isRxIdentityError,
} from "../errors/index.js";
import { demoCommand } from "./commands/demo.js";
import { emulatorCommand } from "./commands/emulator.js";
import { tokenCommand } from "./commands/token.js";
import { watchCommand } from "./commands/watch.js";
import { UsageError } from "./support/args.js";
import type { Command, CommandContext } from "./support/context.js";

const commands: readonly Command[] = [tokenCommand, watchCommand, emulatorCommand, demoCommand];

/**
 * The top-level `--help` text.
 *
 * @example
 * ```ts
 * process.stdout.write(usage);
 * ```
 */
export const usage = `Usage: rx-identity <command> [options]

Microsoft Entra ID client-secret tokens as rxjs streams.

Commands:
${commands.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join("\n")}

Synopsis:
${commands.map((command) => `  ${command.synopsis}`).join("\n")}
  rx-identity <command> --help
  rx-identity --version

Exit codes: 0 done; 1 the service refused or the retries ran out; 2 a bad argument or
configuration (nothing was sent, or a certificate was rejected).
Run \`rx-identity <command> --help\` for a command's options.
`;

/** The package's version, from its package.json (two folders up in src/ and in dist/). */
function version(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** The first line of an error's message: the CLI reports failures on one line. */
function oneLine(error: unknown): string {
  if (isRxIdentityError(error)) {
    const first = error.message.split(/\r?\n/)[0] ?? "";
    // AuthenticationError's first line is only "invalid_client(status code 401)."; the
    // AADSTS code and description that say what to do are on the next line.
    const detail =
      "errorResponse" in error
        ? (error.errorResponse.errorDescription.split(/\r?\n/)[0] ?? "")
        : "";
    return `${error.name}: ${first}${detail && !first.includes(detail) ? ` ${detail}` : ""}`;
  }
  if (error instanceof Error) return error.message.split(/\r?\n/)[0] ?? error.name;
  return String(error);
}

/**
 * 2 for everything the user must fix (a bad argument, a value the credential's validation
 * refuses, a configuration error such as an untrusted certificate); 1 when the service
 * refused or the retries ran out.
 */
function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return error.exitCode;
  return isInvalidArgumentError(error) || isCredentialUnavailableError(error) ? 2 : 1;
}

/**
 * Runs `rx-identity` with `context.argv` (the arguments after the program name) and
 * resolves to the exit code: 0 on success, 2 for bad usage or configuration (validation
 * errors and `CredentialUnavailableError` included), 1 when the service refused or the
 * retries ran out, with a one-line message on stderr and no stack trace.
 *
 * @example
 * ```ts
 * process.exitCode = await main({ argv: process.argv.slice(2), env: process.env,
 *   stdout: process.stdout, stderr: process.stderr, signal });
 * ```
 */
export async function main(context: CommandContext): Promise<number> {
  const [name, ...rest] = context.argv;
  try {
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      (name === undefined ? context.stderr : context.stdout).write(usage);
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-V") {
      context.stdout.write(`${version()}\n`);
      return 0;
    }
    const command = commands.find((candidate) => candidate.name === name);
    if (command === undefined) {
      throw new UsageError(
        `unknown command "${name}" (commands: ${commands.map((c) => c.name).join(", ")}; see --help)`,
      );
    }
    return await command.run({ ...context, argv: rest });
  } catch (error) {
    context.stderr.write(`rx-identity: ${oneLine(error)}\n`);
    return exitCodeOf(error);
  }
}
