/**
 * Argument handling shared by the subcommands: `node:util` `parseArgs` with errors turned
 * into one-line usage errors, and number parsing that names the flag at fault.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * A mistake on the command line or in the environment: printed as one line on stderr, with
 * exit code 2 (the usual code for bad usage), never with a stack trace.
 *
 * @example
 * ```ts
 * throw new UsageError("--scope is required (for example --scope https://storage.azure.com/.default)");
 * ```
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
  /** The process exit code. @default 2 */
  readonly exitCode: number;

  constructor(message: string, exitCode = 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A command's flags, as `parseArgs` takes them. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/** What {@link parseCommandArgs} returns: `parseArgs`'s typed result for `T`. */
export type ParsedArgs<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>;

/**
 * `parseArgs` in strict mode without positionals, whose failures become a
 * {@link UsageError} naming the command.
 *
 * @example
 * ```ts
 * const { values } = parseCommandArgs("token", argv, { scope: { type: "string" } });
 * ```
 */
export function parseCommandArgs<T extends Options>(
  command: string,
  argv: readonly string[],
  options: T,
): ParsedArgs<T> {
  try {
    return parseArgs({
      args: joinNegativeValues(argv, options),
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new UsageError(`${command}: ${message} (see --help)`);
  }
}

/**
 * `--count -1` as `--count=-1`: `parseArgs` reads a value starting with `-` as an option
 * and answers with a riddle ("argument is ambiguous"), where the user deserves the number
 * check's message ("--count must be an integer of at least 1, got "-1"").
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const args: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    const next = argv[index + 1];
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === "string" &&
      next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      args.push(`${arg}=${next}`);
      index += 1;
    } else {
      args.push(arg);
    }
  }
  return args;
}

/**
 * A flag's value as a finite number from `min` (default 0) to `max` (default none), or a
 * {@link UsageError} naming the flag, the range and the value.
 *
 * @example
 * ```ts
 * const seconds = parseNumberFlag("--duration", "30", { min: 1 }); // 30
 * ```
 */
export function parseNumberFlag(
  flag: string,
  value: string,
  options: { readonly min?: number; readonly max?: number; readonly integer?: boolean } = {},
): number {
  const min = options.min ?? 0;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const number = value.trim() === "" ? Number.NaN : Number(value);
  const kind = options.integer === true ? "an integer" : "a number";
  if (
    !Number.isFinite(number) ||
    number < min ||
    number > max ||
    (options.integer === true && !Number.isInteger(number))
  ) {
    const range = Number.isFinite(max) ? `from ${min} to ${max}` : `of at least ${min}`;
    throw new UsageError(`${flag} must be ${kind} ${range}, got "${value}"`);
  }
  return number;
}
