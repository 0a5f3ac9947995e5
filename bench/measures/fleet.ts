/**
 * Fleet: 8 real processes follow the same keys with `token$` for 3 refresh cycles, sharing
 * tokens through the Redis store on one node, then on a Redis Cluster, and once without:
 * token requests that reached the emulator. The peer has no fleet store, so the "peer" column is ours without the store (what
 * every process making its own requests costs, as `@azure/identity` does).
 */
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { measureFleet, type FleetRun } from "../fleet.js";

export const fleet: Measure = {
  id: "fleet",
  // Three runs of 8 processes take about 45 s even at the quick size: `--only=fleet --quick`.
  fullOnly: true,
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const quick = context.mode === "quick";
    context.log(
      `8 processes x ${quick ? 20 : 100} keys x 3 cycles: Redis, a Redis Cluster, no store`,
    );
    const result = await measureFleet({ quick, emulator: context.emulator });
    const { withStore, withClusterStore, withoutStore } = result;
    const row = (run: FleetRun, where: string) => {
      const notes = [`ideal ${result.ideal}`];
      if (quick)
        notes.push(`--quick: ${result.keys} keys, not 100 (target scaled to ${result.target})`);
      if (run.storeOutages > 0) {
        notes.push(`${run.storeOutages} processes saw the store unavailable and acquired alone`);
      }
      if (run.streamErrors > 0) notes.push(`${run.streamErrors} stream errors`);
      return {
        measure: "fleet",
        metric: `fleet ${result.processes} proc x ${result.keys} keys x ${result.cycles} cycles, ${where} (token requests)`,
        ours: run.requests,
        peer: withoutStore.requests,
        peerName: "no store",
        ratio: run.requests === 0 ? null : withoutStore.requests / run.requests,
        ratioMeaning: "no store / store",
        target: `<= ${result.target}`,
        met: run.requests <= result.target && run.streamErrors === 0,
        note: notes.join("; "),
      };
    };
    return {
      rows: [row(withStore, "one Redis"), row(withClusterStore, "Redis Cluster 3+3")],
      details: { ...result },
    };
  },
};
