/**
 * Fleet: 8 real processes follow the same keys with `token$` for 3 refresh cycles, once
 * sharing tokens through the Redis store and once without: token requests that reached the
 * emulator. The peer has no fleet store, so the "peer" column is ours without the store (what
 * every process making its own requests costs, as `@azure/identity` does).
 */
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { measureFleet } from "../fleet.js";

export const fleet: Measure = {
  id: "fleet",
  // Two runs of 8 processes take about 30 s even at the quick size: `--only=fleet --quick`.
  fullOnly: true,
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const quick = context.mode === "quick";
    context.log(`8 processes x ${quick ? 20 : 100} keys x 3 cycles, with and without Redis`);
    const result = await measureFleet({ quick, emulator: context.emulator });
    const { withStore, withoutStore } = result;
    const notes = [`ideal ${result.ideal}`];
    if (quick)
      notes.push(`--quick: ${result.keys} keys, not 100 (target scaled to ${result.target})`);
    if (withStore.storeOutages > 0) {
      notes.push(
        `${withStore.storeOutages} processes saw the store unavailable and acquired alone`,
      );
    }
    if (withStore.streamErrors > 0) notes.push(`${withStore.streamErrors} stream errors`);
    return {
      rows: [
        {
          measure: "fleet",
          metric: `fleet ${result.processes} proc x ${result.keys} keys x ${result.cycles} cycles (token requests)`,
          ours: withStore.requests,
          peer: withoutStore.requests,
          peerName: "no store",
          ratio: withStore.requests === 0 ? null : withoutStore.requests / withStore.requests,
          ratioMeaning: "no store / store",
          target: `<= ${result.target}`,
          met: withStore.requests <= result.target && withStore.streamErrors === 0,
          note: notes.join("; "),
        },
      ],
      details: { ...result },
    };
  },
};
