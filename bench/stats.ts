/** Small statistics and timing helpers of the benchmark. */

/**
 * The median of `samples` (the mean of the two middle values for an even count).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Microseconds per call of `calls` awaited calls of `call`, in a tight loop timed with
 * `process.hrtime.bigint()`. The loop is the same for every library measured, so its own
 * cost (a closure call and an `await`) weighs on both sides alike.
 *
 * @example
 * ```ts
 * const us = await timeAwaitedCalls(() => credential.getToken(scope), 100_000);
 * ```
 */
export async function timeAwaitedCalls(
  call: () => Promise<unknown>,
  calls: number,
): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await call();
  const elapsedNs = process.hrtime.bigint() - start;
  return Number(elapsedNs) / 1_000 / calls;
}

/**
 * How many calls of about `perCallUs` microseconds fill a round of `roundMs`, within
 * `[min, max]`: slow libraries get fewer calls per round so every round takes about as long.
 *
 * @example
 * ```ts
 * callsForRound(0.2, 20, 100, 1_000_000); // 100_000
 * ```
 */
export function callsForRound(
  perCallUs: number,
  roundMs: number,
  min: number,
  max: number,
): number {
  const ideal = Math.round((roundMs * 1_000) / Math.max(perCallUs, 1e-3));
  return Math.min(max, Math.max(min, ideal));
}

/**
 * Runs a full garbage collection when the process was started with `--expose-gc` (the
 * bench's child always is), so rounds do not pay for each other's garbage.
 *
 * @example
 * ```ts
 * collectGarbage();
 * const before = process.memoryUsage().heapUsed;
 * ```
 */
export function collectGarbage(): void {
  // Twice: the first pass can leave objects whose finalisers free more on the second.
  globalThis.gc?.();
  globalThis.gc?.();
}

/**
 * `heapUsed` after a full collection, in bytes.
 *
 * @example
 * ```ts
 * const before = heapAfterGc();
 * ```
 */
export function heapAfterGc(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * Runs `task(i)` for `i` in `[0, count)` with at most `concurrency` in flight, and stops
 * starting new ones once `budgetMs` of wall time has passed. Resolves with how many finished.
 *
 * @example
 * ```ts
 * const filled = await boundedFill(100_000, 64, 30_000, (i) => credential.getToken(scopeOf(i)));
 * ```
 */
export async function boundedFill(
  count: number,
  concurrency: number,
  budgetMs: number,
  task: (index: number) => Promise<unknown>,
): Promise<number> {
  const deadline = performance.now() + budgetMs;
  let next = 0;
  let finished = 0;
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) {
      const index = next++;
      await task(index);
      finished++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return finished;
}

/**
 * Resolves after `ms` of real time. The bench (unlike the tests) may wait on the wall clock:
 * it measures real time.
 *
 * @example
 * ```ts
 * await sleep(5);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Rounds for display: 3 significant digits, no exponent for ordinary magnitudes.
 *
 * @example
 * ```ts
 * formatNumber(0.123456); // "0.123"
 * formatNumber(12345.6); // "12,346"
 * ```
 */
export function formatNumber(value: number | null): string {
  if (value === null || Number.isNaN(value)) return "—";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  const magnitude = Math.abs(value);
  if (magnitude >= 1_000) return Math.round(value).toLocaleString("en-US");
  if (magnitude === 0) return "0";
  return Number(value.toPrecision(3)).toString();
}
