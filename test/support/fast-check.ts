/**
 * The number of runs of every fast-check property: `FC_NUM_RUNS` from the environment,
 * 200 by default. Property names carry it, e.g. `"... (200 runs)"`.
 */
function readNumRuns(): number {
  const raw = process.env.FC_NUM_RUNS;
  if (raw === undefined || raw === "") return 200;
  const parsed = Number(raw);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new Error(`Expected FC_NUM_RUNS to be a positive integer, got ${raw}.`);
  }
  return parsed;
}

export const numRuns = readNumRuns();

/** `" (200 runs)"`, to append to a property's test name. */
export const runsLabel = `(${numRuns} runs)`;
