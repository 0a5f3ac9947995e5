/**
 * Key scaling: the cost of a cache hit while a credential holds 1, 1,000, 10,000 and 100,000
 * cached keys (distinct scopes), reading every held key round-robin (what a multi-tenant
 * service or a gateway does; key 0 alone would stay in the CPU cache and hide the cost of a
 * large cache). Beside it, in interleaved rounds of the same run, the limit: a bare `Map` of
 * the same scope strings (the same string objects) to resolved promises, one per key, read in
 * the same order, filled as a cache of tokens is: each key's promise made when its token
 * arrived during the fill. A third subject is reported beside them, not judged: a `Map` whose
 * promises were all made at once after the fill, side by side in memory, which no cache
 * filled over the network has (reading it costs less at 10,000 keys, where every object a
 * read touches is a cache miss). The peer is measured at
 * 1 and 1,000 keys: MSAL's cache lookup for client credentials scans every cached access token
 * (DESIGN.md, facts), so its cost grows with n. Filling the peer is itself quadratic (a profile
 * of the fill shows MSAL's `CacheManager.getAuthorityMetadataByAlias` scanning every cache key
 * on every request), which is why it stops at 1,000 keys.
 *
 * Keys are filled through the network (an emulator at zero latency in a process of its own, so
 * its token signing and the client's work run on two cores, a bounded number of requests in
 * flight) within a time budget; a level the budget cannot reach is reported with the number
 * of keys actually held.
 */
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import type { MetricRow } from "../protocol.js";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { boundedFill, median } from "../stats.js";
import { startEmulatorProcess } from "../emulator-process.js";
import { createOurs, createPeer, PEER_NAME, scopeOf, type BenchTarget } from "../subjects.js";
import { interleavedRounds } from "./cache-hit.js";

const SIZES = {
  quick: {
    oursLevels: [1, 1_000, 10_000],
    peerLevels: [1, 1_000],
    rounds: 9,
    roundMs: 20,
    warmupCalls: 20_000,
    fillBudgetMs: 10_000,
    peerFillBudgetMs: 10_000,
  },
  full: {
    oursLevels: [1, 1_000, 10_000, 100_000],
    peerLevels: [1, 1_000],
    rounds: 31,
    roundMs: 40,
    warmupCalls: 100_000,
    fillBudgetMs: 300_000,
    peerFillBudgetMs: 40_000,
  },
} as const;

/** Target: from 10,000 keys on, a hit costs at most this factor of the bare-`Map` limit... */
export const KEY_SCALING_MAX_RATIO = 1.5;
/** ...and with one key at most this many microseconds. */
export const KEY_SCALING_ONE_KEY_MAX_US = 0.5;
/** The levels the ratio target applies to. */
const RATIO_TARGET_FROM_KEYS = 10_000;

const FILL_CONCURRENCY = 32;

interface Level {
  readonly keys: number;
  readonly us: number;
  /** The bare-`Map` limit, same strings and order, same rounds, filled as the tokens came. */
  readonly mapUs: number;
  /** A bare `Map` whose promises were all made at once after the fill (not judged). */
  readonly packedMapUs: number;
  readonly samplesUs: readonly number[];
  readonly mapSamplesUs: readonly number[];
  readonly packedMapSamplesUs: readonly number[];
  readonly fillMs: number;
}

/**
 * A round-robin reader of `scopes`: each call gets the next one. Both sides of a level use
 * one, so the loop's own cost (closure, index, array read) weighs on both alike.
 */
function roundRobin<T>(scopes: readonly string[], read: (scope: string) => T): () => T {
  let next = 0;
  return () => {
    const scope = scopes[next]!;
    next = next + 1 === scopes.length ? 0 : next + 1;
    return read(scope);
  };
}

/**
 * Fills `credential` up to each level's number of keys and measures a cache hit on all held
 * keys round-robin, interleaved with a bare `Map` of the same scope strings.
 */
async function measureLevels(
  context: MeasureContext,
  name: string,
  credential: Pick<TokenCredential, "getToken">,
  levels: readonly number[],
  sizes: (typeof SIZES)[keyof typeof SIZES],
  fillBudgetMs: number,
): Promise<Level[]> {
  const scopes: string[] = [];
  const results: Level[] = [];
  // The limit (issue #12: "a bare Map of the same scope strings to resolved promises"),
  // filled as any cache of tokens is: a key's promise is made when its token arrives.
  const limit = new Map<string, Promise<AccessToken | null>>();
  // The budget is for filling only: the rounds of a level do not eat the next level's fill.
  let fillSpentMs = 0;
  for (const keys of levels) {
    const fillStart = performance.now();
    const budget = Math.max(0, fillBudgetMs - fillSpentMs);
    const from = scopes.length;
    // The strings a service keeps (its tenants' scopes, built once) are the ones it reads
    // with: the fill and the reads use the same string objects, as the bare Map does.
    const wanted = Array.from({ length: keys - from }, (_, i) => scopeOf("scale", from + i));
    const filled = await boundedFill(keys - from, FILL_CONCURRENCY, budget, async (i) => {
      const token = await credential.getToken(wanted[i]!);
      limit.set(wanted[i]!, Promise.resolve(token));
    });
    for (let i = 0; i < filled; i++) scopes.push(wanted[i]!);
    const fillMs = performance.now() - fillStart;
    fillSpentMs += fillMs;
    context.log(`${name}: ${scopes.length} keys (filled in ${Math.round(fillMs)} ms)`);
    // Promises made one after the other, after the fill: packed in memory, which no cache
    // filled over the network is (one promise shared by every key would be packed further).
    const token = await credential.getToken(scopes[0]!);
    const packed = new Map(scopes.map((scope) => [scope, Promise.resolve(token)]));
    const [samples, mapSamples, packedSamples] = await interleavedRounds(
      [
        roundRobin(scopes, (scope) => credential.getToken(scope)),
        roundRobin(scopes, (scope) => limit.get(scope)!),
        roundRobin(scopes, (scope) => packed.get(scope)!),
      ],
      sizes.rounds,
      sizes.roundMs,
      sizes.warmupCalls,
    );
    results.push({
      keys: scopes.length,
      us: median(samples!),
      mapUs: median(mapSamples!),
      packedMapUs: median(packedSamples!),
      samplesUs: samples!,
      mapSamplesUs: mapSamples!,
      packedMapSamplesUs: packedSamples!,
      fillMs,
    });
    if (scopes.length < keys) break;
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
  const ours = createOurs(target());
  let oursLevels: Level[];
  try {
    oursLevels = await measureLevels(
      context,
      "ours",
      ours,
      sizes.oursLevels,
      sizes,
      sizes.fillBudgetMs,
    );
  } finally {
    await ours.close();
  }
  // The peer gets its own budget: its fill is not what is being measured.
  const peer = await measureLevels(
    context,
    "peer",
    createPeer(target()),
    sizes.peerLevels,
    sizes,
    sizes.peerFillBudgetMs,
  );
  const largest = oursLevels[oursLevels.length - 1]!;
  const wanted = sizes.oursLevels[sizes.oursLevels.length - 1]!;
  const keysText = (keys: number): string =>
    `${keys.toLocaleString("en-US")} key${keys === 1 ? "" : "s"}`;
  const targetOf = (level: Level): { target: string; met: boolean | null } => {
    if (level.keys === 1) {
      return {
        target: `<= ${KEY_SCALING_ONE_KEY_MAX_US} µs`,
        met: level.us <= KEY_SCALING_ONE_KEY_MAX_US,
      };
    }
    if (level.keys >= RATIO_TARGET_FROM_KEYS) {
      return {
        target: `<= ${KEY_SCALING_MAX_RATIO}x bare Map`,
        met: level.us / level.mapUs <= KEY_SCALING_MAX_RATIO,
      };
    }
    return { target: "", met: null };
  };
  const rows: MetricRow[] = oursLevels.map((level, index) => {
    const peerLevel = peer.find((p) => p.keys === level.keys);
    const isLast = index === oursLevels.length - 1;
    const notes: string[] = [
      `round-robin over all held keys; bare Map of the same strings, filled as the tokens came, ` +
        `${level.mapUs.toFixed(3)} µs; one whose promises were made together after the fill ` +
        `${level.packedMapUs.toFixed(3)} µs (ours ${(level.us / level.packedMapUs).toFixed(2)}x it)`,
    ];
    if (peerLevel !== undefined) {
      notes.push(
        `peer = ${(peerLevel.us / peerLevel.mapUs).toFixed(0)}x the bare Map at ${keysText(level.keys)}`,
      );
    }
    if (isLast && context.mode === "quick" && wanted < 100_000) {
      notes.push(
        `--quick stops at ${keysText(wanted)} to stay short; the full run goes to 100,000`,
      );
    }
    if (isLast && level.keys < wanted) {
      const fillMs = oursLevels.reduce((sum, l) => sum + l.fillMs, 0);
      notes.push(
        `the ${sizes.fillBudgetMs / 1_000} s fill budget ran out at ${keysText(level.keys)} of ` +
          `${wanted.toLocaleString("en-US")} (${Math.round((level.keys / fillMs) * 1_000)} keys/s)`,
      );
    }
    return {
      measure: "key-scaling",
      metric: `cache hit with ${keysText(level.keys)} (µs/call)`,
      ours: level.us,
      peer: peerLevel?.us ?? null,
      peerName: PEER_NAME,
      ratio: level.us / level.mapUs,
      ratioMeaning: "ours / bare Map",
      ...targetOf(level),
      note: notes.join("; "),
    };
  });
  // Peer levels ours did not reach (or a peer fill cut short) still get their own row.
  for (const level of peer) {
    if (oursLevels.some((o) => o.keys === level.keys)) continue;
    rows.push({
      measure: "key-scaling",
      metric: `cache hit with ${keysText(level.keys)} (µs/call)`,
      ours: null,
      peer: level.us,
      peerName: PEER_NAME,
      ratio: level.us / level.mapUs,
      ratioMeaning: "peer / bare Map",
      target: "",
      met: null,
      note: `peer only; its fill budget ran out at ${keysText(level.keys)}`,
    });
  }
  return {
    rows,
    details: {
      fillConcurrency: FILL_CONCURRENCY,
      largestOurs: largest.keys,
      ours: oursLevels,
      peer,
    },
  };
}
