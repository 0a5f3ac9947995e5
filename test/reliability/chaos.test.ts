/**
 * Chaos in virtual time: random command sequences over 8 keys (2 of them claims keys) with
 * random outage schedules, subscribers coming and going, aborted callers and close; the
 * engine's invariants are checked after every step (see `support/chaos-model.ts`).
 */
import { fc } from "@fast-check/vitest";
import { describe, it } from "vitest";
import { numRuns, runsLabel } from "../support/fast-check.js";
import { ChaosWorld, chaosCommands, runChaos } from "./support/chaos-model.js";

describe("token registry under chaos", () => {
  it(`keeps its invariants over random faults, subscribers, aborts, claims and close ${runsLabel}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.constantFrom(40_000, 600_000, 3_600_000),
        fc.commands(chaosCommands(6, 2), { maxCommands: 40 }),
        async (seed, lifetime, commands) => {
          await runChaos(new ChaosWorld(6, 2, seed, () => lifetime), commands);
        },
      ),
      { numRuns },
    );
  });
});
