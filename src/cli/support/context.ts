import type { Options } from "./args.js";

/** What a subcommand receives: its arguments and the process's streams, environment and stop signal. */
export interface CommandContext {
  /** The arguments after the subcommand's name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined };
  readonly stderr: NodeJS.WritableStream;
  /** Aborts on Ctrl-C (SIGINT) or SIGTERM: long-running commands stop cleanly on it. */
  readonly signal: AbortSignal;
}

/** A subcommand of `rx-identity`. */
export interface Command {
  readonly name: string;
  /** One line for the list of commands. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  /** One line with every flag, for the top-level `--help` and the README. */
  readonly synopsis: string;
  /** Its flags (`parseArgs` options): `--help` and the README list every one of them. */
  readonly options: Options;
  /** Runs the command and resolves to the process exit code. */
  run(context: CommandContext): Promise<number>;
}

/**
 * Resolves when `signal` aborts (at once if it already has).
 *
 * @example
 * ```ts
 * await untilAborted(context.signal); // until Ctrl-C
 * ```
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}
