import type { FaultHandle, FaultSpec } from "./types.js";

/** What a token request looks like to fault matching. */
export interface FaultTarget {
  readonly tenant: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
}

interface ActiveFault {
  readonly spec: FaultSpec;
  hits: number;
  remaining: number;
}

/**
 * The emulator's injected faults, in injection order: a request takes the first one that
 * matches and has hits left.
 *
 * @example
 * ```ts
 * const faults = new FaultBook();
 * faults.add({ status: 503, times: 2 });
 * faults.take({ tenant: "t", clientId: "c", scopes: ["s"] }); // the 503 fault
 * ```
 */
export class FaultBook {
  #faults: ActiveFault[] = [];

  add(spec: FaultSpec): FaultHandle {
    const times = spec.times ?? 1;
    if (!(times > 0) || (!Number.isInteger(times) && times !== Infinity)) {
      throw new RangeError(
        `Expected \`times\` to be a positive integer or Infinity, got ${String(times)}`,
      );
    }
    if (spec.delayMs !== undefined && !(spec.delayMs >= 0)) {
      throw new RangeError(
        `Expected \`delayMs\` to be a non-negative number, got ${String(spec.delayMs)}`,
      );
    }
    if (
      spec.status !== undefined &&
      !(Number.isInteger(spec.status) && spec.status >= 100 && spec.status <= 599)
    ) {
      throw new RangeError(
        `Expected \`status\` to be an HTTP status (100-599), got ${String(spec.status)}`,
      );
    }
    const fault: ActiveFault = { spec, hits: 0, remaining: times };
    this.#faults.push(fault);
    return {
      get hits() {
        return fault.hits;
      },
      get remaining() {
        return fault.remaining;
      },
      remove: () => {
        fault.remaining = 0;
        this.#faults = this.#faults.filter((candidate) => candidate !== fault);
      },
    };
  }

  /** Consumes one hit of the first matching fault, if any. */
  take(target: FaultTarget): FaultSpec | undefined {
    const fault = this.#faults.find(
      (candidate) => candidate.remaining > 0 && matches(candidate.spec, target),
    );
    if (fault === undefined) return undefined;
    fault.hits += 1;
    fault.remaining -= 1;
    if (fault.remaining <= 0)
      this.#faults = this.#faults.filter((candidate) => candidate !== fault);
    return fault.spec;
  }

  clear(): void {
    for (const fault of this.#faults) fault.remaining = 0;
    this.#faults = [];
  }
}

function matches(spec: FaultSpec, target: FaultTarget): boolean {
  const match = spec.match;
  if (match === undefined) return true;
  if (match.tenant !== undefined && match.tenant.toLowerCase() !== target.tenant.toLowerCase())
    return false;
  if (match.clientId !== undefined && match.clientId !== target.clientId) return false;
  if (match.scope !== undefined && !target.scopes.includes(match.scope)) return false;
  return true;
}
