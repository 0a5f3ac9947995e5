/** The bench's table (stdout) and `bench/results.json`. */
import { writeFile } from "node:fs/promises";
import { cpus, platform, arch } from "node:os";
import type { BenchMode, MeasureResult, MetricRow } from "./protocol.js";
import { formatNumber } from "./stats.js";

/** What `bench/results.json` holds. */
export interface BenchResults {
  readonly date: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly platform: string;
  readonly mode: BenchMode;
  readonly rows: readonly MetricRow[];
  readonly measures: readonly MeasureResult[];
  readonly failures: readonly { readonly id: string; readonly error: string }[];
}

/**
 * Collects the machine description and every result into one object.
 *
 * @example
 * ```ts
 * const results = assembleResults("quick", measures, failures);
 * ```
 */
export function assembleResults(
  mode: BenchMode,
  measures: readonly MeasureResult[],
  failures: readonly { readonly id: string; readonly error: string }[],
): BenchResults {
  const cpuList = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpuList[0]?.model.trim() ?? "unknown",
    cores: cpuList.length,
    platform: `${platform()} ${arch()}`,
    mode,
    rows: measures.flatMap((m) => m.rows),
    measures,
    failures,
  };
}

function metText(met: boolean | null): string {
  if (met === null) return "—";
  return met ? "yes" : "NO";
}

/**
 * Renders the rows as a plain-text table (metric, ours, peer, ratio, target, met?), with
 * each row's note and the peer it was compared with underneath.
 *
 * @example
 * ```ts
 * process.stdout.write(renderTable(results));
 * ```
 */
export function renderTable(results: BenchResults): string {
  const header = ["metric", "ours", "peer", "ratio", "target", "met?"];
  const body = results.rows.map((row, index) => [
    `[${index + 1}] ${row.metric}`,
    formatNumber(row.ours),
    formatNumber(row.peer),
    row.ratio === null ? "—" : `${formatNumber(row.ratio)} (${row.ratioMeaning})`,
    row.target,
    metText(row.met),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column]!.length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join("  ")
      .trimEnd();
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  const notes = results.rows
    .map((row, index) => ({ row, index }))
    .filter(({ row }) => row.note !== undefined || row.peer !== null)
    .map(({ row, index }) => {
      const peer = row.peer === null ? "" : `peer = ${row.peerName}`;
      const parts = [peer, row.note ?? ""].filter((part) => part !== "");
      return `  [${index + 1}] ${parts.join("; ")}`;
    });
  const failures = results.failures.map(
    (failure) => `  FAILED ${failure.id}: ${failure.error.split("\n")[0] ?? ""}`,
  );
  return [
    `rx-identity bench (${results.mode}) — ${results.date}, Node ${results.node}, ${results.cpu} x${results.cores}, ${results.platform}`,
    "",
    line(header),
    rule,
    ...body.map(line),
    "",
    ...notes,
    ...(failures.length > 0 ? ["", ...failures] : []),
    "",
  ].join("\n");
}

/**
 * Writes `results` as pretty JSON to `path`.
 *
 * @example
 * ```ts
 * await writeResults(new URL("./results.json", import.meta.url), results);
 * ```
 */
export async function writeResults(path: URL, results: BenchResults): Promise<void> {
  await writeFile(path, `${JSON.stringify(results, null, 2)}\n`);
}
