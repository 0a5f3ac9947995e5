/** What every measure of the bench receives and returns. */
import { randomUUID } from "node:crypto";
import type { EntraEmulator } from "../src/testing/index.js";
import type { BenchMode, MetricRow } from "./protocol.js";
import type { BenchTarget } from "./subjects.js";

/** What a measure is given by the child process. */
export interface MeasureContext {
  readonly mode: BenchMode;
  /** The emulator every library talks to, trusted through `NODE_EXTRA_CA_CERTS`. */
  readonly emulator: EntraEmulator;
  /** The emulator's certificate and key, to start more emulators the process trusts. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** The registered application. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Progress on stderr (the table goes to stdout). */
  log(message: string): void;
}

/** A measure's rows and raw figures. */
export interface MeasureOutput {
  readonly rows: readonly MetricRow[];
  readonly details: Record<string, unknown>;
}

/** One measure of the bench. */
export interface Measure {
  /** Short id, used by `--only` and in `results.json`. */
  readonly id: string;
  /** Left out of `--quick` (which stays at about 2 minutes) unless named by `--only`. */
  readonly fullOnly?: boolean;
  run(context: MeasureContext): Promise<MeasureOutput>;
}

/**
 * A target with a tenant of its own, so that `emulator.requestCount({ tenant })` counts
 * only this measure's requests and no library's cache is shared with another measure's.
 *
 * @example
 * ```ts
 * const target = freshTarget(context);
 * const before = context.emulator.requestCount({ tenant: target.tenantId });
 * ```
 */
export function freshTarget(context: MeasureContext, emulator = context.emulator): BenchTarget {
  return {
    authorityHost: emulator.authorityHost,
    host: emulator.host,
    tenantId: randomUUID(),
    clientId: context.clientId,
    clientSecret: context.clientSecret,
  };
}
