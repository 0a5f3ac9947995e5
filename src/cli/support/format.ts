/**
 * Plain-text formatting for the command line: redaction, relative timestamps, durations and
 * colour that appears only on a terminal.
 */

/**
 * A token as logs may show it: its first 6 characters and its length, never the rest (the
 * same rule as the credential's logger, so the two outputs can be compared).
 *
 * @example
 * ```ts
 * redactToken("eyJ0eXAiOiJKV1Qi..."); // "eyJ0eX…(1234 chars)"
 * ```
 */
export function redactToken(token: string): string {
  return `${token.slice(0, 6)}…(${token.length} chars)`;
}

/**
 * A duration in milliseconds as a short human string: `850ms`, `12.3s`, `4m05s`, `2h00m`.
 *
 * @example
 * ```ts
 * formatDuration(12_300); // "12.3s"
 * ```
 */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${(abs / 1_000).toFixed(1)}s`;
  const totalSeconds = Math.round(abs / 1_000);
  if (totalSeconds < 3_600) {
    return `${sign}${Math.floor(totalSeconds / 60)}m${String(totalSeconds % 60).padStart(2, "0")}s`;
  }
  const totalMinutes = Math.round(totalSeconds / 60);
  return `${sign}${Math.floor(totalMinutes / 60)}h${String(totalMinutes % 60).padStart(2, "0")}m`;
}

/**
 * A timestamp relative to a start time, right-aligned so a timeline reads as a column:
 * `[  12.3s]`.
 *
 * @example
 * ```ts
 * formatElapsed(12_345); // "[  12.3s]"
 * ```
 */
export function formatElapsed(ms: number): string {
  return `[${(Math.max(0, ms) / 1_000).toFixed(1).padStart(6, " ")}s]`;
}

/** ANSI styling functions; each returns its input unchanged when colour is off. */
export interface Palette {
  readonly enabled: boolean;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly red: (text: string) => string;
  readonly cyan: (text: string) => string;
  readonly magenta: (text: string) => string;
}

function style(enabled: boolean, open: number, close: number): (text: string) => string {
  return enabled ? (text) => `\u001b[${open}m${text}\u001b[${close}m` : (text) => text;
}

/**
 * Whether output to `stream` should be coloured: only on a terminal, and never when
 * `NO_COLOR` is set to anything (https://no-color.org).
 *
 * @example
 * ```ts
 * const palette = createPalette(colourWanted(process.stdout, process.env));
 * ```
 */
export function colourWanted(
  stream: { readonly isTTY?: boolean | undefined },
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return stream.isTTY === true && env["NO_COLOR"] === undefined;
}

/**
 * The colour functions, or identity functions when `enabled` is false.
 *
 * @example
 * ```ts
 * const { green } = createPalette(true);
 * console.log(green("ok"));
 * ```
 */
export function createPalette(enabled: boolean): Palette {
  return {
    enabled,
    dim: style(enabled, 2, 22),
    bold: style(enabled, 1, 22),
    green: style(enabled, 32, 39),
    yellow: style(enabled, 33, 39),
    red: style(enabled, 31, 39),
    cyan: style(enabled, 36, 39),
    magenta: style(enabled, 35, 39),
  };
}

/**
 * The payload of a JWT, decoded without verifying it (for display only), or `undefined` when
 * the token is not a JWT.
 *
 * @example
 * ```ts
 * decodeJwtPayload(token)?.["aud"]; // "https://storage.azure.com"
 * ```
 */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
