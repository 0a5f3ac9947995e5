/**
 * Key scaling: cache-hit cost of one key while a credential holds 1, 1,000, 10,000 and
 * 100,000 cached keys (distinct scopes). Each level is measured in rounds interleaved with a
 * credential that holds one key, so the ratio is immune to machine drift. The peer is
 * measured at 1 and 1,000 keys (and 10,000 in a full run): MSAL's cache lookup for client
 * credentials scans every cached access token (DESIGN.md, facts), so its cost grows with n.
 * Filling the peer is itself quadratic (a profile of the fill shows MSAL's
 * `CacheManager.getAuthorityMetadataByAlias` scanning every cache key on every request), which
 * is why it stops at 1,000 keys.
 *
 * Keys are filled through the network (an emulator at zero latency in a process of its own, so
 * its token signing and the client's work run on two cores, a bounded number of requests in
 * flight) within a time budget; a level the budget cannot reach is reported with the number
 * of keys actually held.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { MetricRow } from "../protocol.js";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { boundedFill, median } from "../stats.js";
import { startEmulatorProcess } from "../emulator-process.js";
import { createOurs, createPeer, PEER_NAME, scopeOf, type BenchTarget } from "../subjects.js";
import { interleavedRounds } from "./cache-hit.js";

const SIZES = {
  quick: {
    oursLevels: [1, 1_000, 5_000],
    peerLevels: [1, 1_000],
    rounds: 5,
    roundMs: 20,
    warmupCalls: 20_000,
    fillBudgetMs: 10_000,
    peerFillBudgetMs: 10_000,
  },
  full: {
    oursLevels: [1, 1_000, 10_000, 100_000],
    peerLevels: [1, 1_000],
    rounds: 15,
    roundMs: 40,
    warmupCalls: 100_000,
    fillBudgetMs: 150_000,
    peerFillBudgetMs: 40_000,
  },
} as const;

/** Target: the cost at the largest level is within this factor of the cost at one key. */
export const KEY_SCALING_MAX_RATIO = 1.2;

const FILL_CONCURRENCY = 32;

interface Level {
  readonly keys: number;
  readonly us: number;
  readonly singleUs: number;
  readonly samplesUs: readonly number[];
  readonly singleSamplesUs: readonly number[];
  readonly fillMs: number;
}

/**
 * Fills `credential` up to `keys` keys (it holds `held` already) and measures a cache hit on
 * key 0 interleaved with the same call on a one-key credential.
 */
async function measureLevels(
  context: MeasureContext,
  name: string,
  many: Pick<TokenCredential, "getToken">,
  single: Pick<TokenCredential, "getToken">,
  levels: readonly number[],
  sizes: (typeof SIZES)[keyof typeof SIZES],
  deadline: number,
): Promise<Level[]> {
  const hit = scopeOf("scale", 0);
  await single.getToken(hit);
  let held = 0;
  const results: Level[] = [];
  for (const keys of levels) {
    const fillStart = performance.now();
    const budget = Math.max(0, deadline - fillStart);
    const from = held;
    held += await boundedFill(keys - held, FILL_CONCURRENCY, budget, (i) =>
      many.getToken(scopeOf("scale", from + i)),
    );
    const fillMs = performance.now() - fillStart;
    context.log(`${name}: ${held} keys (filled in ${Math.round(fillMs)} ms)`);
    const [manySamples, singleSamples] = await interleavedRounds(
      [() => many.getToken(hit), () => single.getToken(hit)],
      sizes.rounds,
      sizes.roundMs,
      sizes.warmupCalls,
    );
    results.push({
      keys: held,
      us: median(manySamples!),
      singleUs: median(singleSamples!),
      samplesUs: manySamples!,
      singleSamplesUs: singleSamples!,
      fillMs,
    });
    if (held < keys) break;
  }
  return results;
}

export const keyScaling: Measure = {
  id: "key-scaling",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const sizes = SIZES[context.mode];
    const remote = await startEmulatorProcess({
      tls: context.tls,
      clientId: context.clientId,
      clientSecret: context.clientSecret,
    });
    const remoteTarget = (): BenchTarget => ({
      ...freshTarget(context),
      authorityHost: remote.authorityHost,
      host: remote.host,
    });
    try {
      return await measure(context, sizes, remoteTarget);
    } finally {
      await remote.stop();
    }
  },
};

async function measure(
  context: MeasureContext,
  sizes: (typeof SIZES)[keyof typeof SIZES],
  target: () => BenchTarget,
): Promise<MeasureOutput> {
  const deadline = performance.now() + sizes.fillBudgetMs;
  const oursMany = createOurs(target());
  const oursSingle = createOurs(target());
  let ours: Level[];
  try {
    ours = await measureLevels(
      context,
      "ours",
      oursMany,
      oursSingle,
      sizes.oursLevels,
      sizes,
      deadline,
    );
  } finally {
    await Promise.all([oursMany.close(), oursSingle.close()]);
  }
  // The peer gets its own budget: its fill is not what is being measured.
  const peerDeadline = performance.now() + sizes.peerFillBudgetMs;
  const peer = await measureLevels(
    context,
    "peer",
    createPeer(target()),
    createPeer(target()),
    sizes.peerLevels,
    sizes,
    peerDeadline,
  );
  const largest = ours[ours.length - 1]!;
  const wanted = sizes.oursLevels[sizes.oursLevels.length - 1]!;
  const keysText = (keys: number): string =>
    `${keys.toLocaleString("en-US")} key${keys === 1 ? "" : "s"}`;
  const rows: MetricRow[] = ours.map((level, index) => {
    const peerLevel = peer.find((p) => p.keys === level.keys);
    const isLast = index === ours.length - 1;
    const notes: string[] = [];
    if (peerLevel !== undefined) {
      notes.push(
        `peer at ${keysText(level.keys)} = ${(peerLevel.us / peerLevel.singleUs).toFixed(2)}x its 1-key cost`,
      );
    }
    if (isLast && context.mode === "quick" && wanted < 100_000) {
      notes.push(
        `--quick stops at ${keysText(wanted)} to stay under a minute; the full run goes to 100,000`,
      );
    }
    if (isLast && level.keys < wanted) {
      notes.push(`the fill budget ran out at ${level.keys} of ${wanted} keys`);
    }
    return {
      measure: "key-scaling",
      metric: `cache hit with ${keysText(level.keys)} (µs/call)`,
      ours: level.us,
      peer: peerLevel?.us ?? null,
      peerName: PEER_NAME,
      ratio: level.us / level.singleUs,
      ratioMeaning: "ours vs 1 key",
      target: isLast ? `<= ${KEY_SCALING_MAX_RATIO}x of 1 key` : "",
      met: isLast ? level.us / level.singleUs <= KEY_SCALING_MAX_RATIO : null,
      ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
    };
  });
  // Peer levels ours did not reach (or a peer fill cut short) still get their own row.
  for (const level of peer) {
    if (ours.some((o) => o.keys === level.keys)) continue;
    rows.push({
      measure: "key-scaling",
      metric: `cache hit with ${keysText(level.keys)} (µs/call)`,
      ours: null,
      peer: level.us,
      peerName: PEER_NAME,
      ratio: level.us / level.singleUs,
      ratioMeaning: "peer vs 1 key",
      target: "",
      met: null,
      note: `peer only; its fill budget ran out at ${keysText(level.keys)}`,
    });
  }
  return {
    rows,
    details: { fillConcurrency: FILL_CONCURRENCY, largestOurs: largest.keys, ours, peer },
  };
}
