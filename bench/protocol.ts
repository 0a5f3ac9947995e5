/**
 * What the bench's parent process (`bench/index.ts`) and its measuring child
 * (`bench/child.ts`) tell each other over the IPC channel.
 */

/** How big a run is. `quick` finishes in about 2 minutes; `full` in about 25. */
export type BenchMode = "quick" | "full";

/** The parent's instructions to the child. */
export interface ChildConfig {
  readonly mode: BenchMode;
  /** PEM certificate and key the child's emulator serves; the child trusts it through `NODE_EXTRA_CA_CERTS`. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** Only these measures (by id), or every measure when empty. */
  readonly only: readonly string[];
}

/** One row of the results table. */
export interface MetricRow {
  /** Which measure produced it, such as `cache-hit`. */
  readonly measure: string;
  /** What is measured, with its unit, such as `cache-hit getToken (µs/call)`. */
  readonly metric: string;
  /** Our figure (`null` when it could not be taken). */
  readonly ours: number | null;
  /** The peer's figure (`null` when not measured). */
  readonly peer: number | null;
  /** What the peer is, such as `@azure/identity 4.13.1`. */
  readonly peerName: string;
  /** The ratio that the target is about, with its meaning (`null` when not applicable). */
  readonly ratio: number | null;
  /** How to read {@link ratio}, such as `peer/ours` or `ours@100k / ours@1`. */
  readonly ratioMeaning: string;
  /** The target, in words, such as `>= 100x faster and <= 0.5 µs`. */
  readonly target: string;
  /** Whether the target is met (`null` when it has no target or could not be judged). */
  readonly met: boolean | null;
  /** Anything a reader needs to interpret the row (reduced sizes in quick mode, failures). */
  readonly note?: string;
}

/** One measure's outcome: its rows and the raw figures behind them. */
export interface MeasureResult {
  readonly id: string;
  readonly rows: readonly MetricRow[];
  /** Raw samples and sizes, kept in `results.json` so a reader can recompute the rows. */
  readonly details: Record<string, unknown>;
  /** Wall-clock milliseconds the measure took. */
  readonly elapsedMs: number;
}

/** Messages from the child to the parent. */
export type ChildMessage =
  | { readonly type: "result"; readonly result: MeasureResult }
  | { readonly type: "failed"; readonly id: string; readonly error: string }
  | { readonly type: "done" };
