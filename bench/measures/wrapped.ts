/**
 * `reactiveCredential` over `@azure/identity`'s `ClientSecretCredential`, beside the bare
 * credential in the same run: a cold stampede (how many token requests 10,000 concurrent
 * callers make) and the cache-hit cost of `getToken`. What a `DefaultAzureCredential` user
 * gets by wrapping it.
 */
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { median } from "../stats.js";
import { createPeer, createWrappedPeer, PEER_NAME, scopeOf } from "../subjects.js";
import { CACHE_HIT_MAX_US, CACHE_HIT_SIZES, interleavedRounds } from "./cache-hit.js";
import { CALLS, LATENCY_MS, PEER_CALLS, stampede } from "./stampede.js";

const WRAPPED = `reactiveCredential(${PEER_NAME})`;

async function coldCallers(context: MeasureContext) {
  context.log(`wrapped: ${CALLS} concurrent calls`);
  const wrapped = await stampede(context, "wrapped", CALLS);
  const bareCalls = PEER_CALLS[context.mode];
  context.log(`bare: ${bareCalls} concurrent calls`);
  const bare = await stampede(context, "peer", bareCalls);
  return { wrapped, bare, bareCalls };
}

async function cacheHits(context: MeasureContext) {
  const sizes = CACHE_HIT_SIZES[context.mode];
  const target = freshTarget(context);
  const scope = scopeOf("wrapped-cache-hit", 0);
  const wrapped = createWrappedPeer(target);
  const bare = createPeer(target);
  try {
    await wrapped.getToken(scope);
    await bare.getToken(scope);
    const before = context.emulator.requestCount({ tenant: target.tenantId });
    context.log(`interleaving ${sizes.rounds} rounds of ~${sizes.roundMs} ms per side`);
    const [wrappedSamples, bareSamples] = await interleavedRounds(
      [() => wrapped.getToken(scope), () => bare.getToken(scope)],
      sizes.rounds,
      sizes.roundMs,
      sizes.warmupCalls,
    );
    const requestsDuring = context.emulator.requestCount({ tenant: target.tenantId }) - before;
    return {
      wrappedUs: median(wrappedSamples!),
      bareUs: median(bareSamples!),
      requestsDuring,
      rounds: sizes.rounds,
    };
  } finally {
    await wrapped.close();
  }
}

export const wrappedPeer: Measure = {
  id: "wrapped",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const cold = await coldCallers(context);
    const hits = await cacheHits(context);
    const coldNotes = [`${LATENCY_MS} ms emulator latency`];
    if (cold.bareCalls !== CALLS) {
      coldNotes.push(`--quick: the bare credential got ${cold.bareCalls} calls, not ${CALLS}`);
    }
    if (cold.wrapped.failures > 0) coldNotes.push(`wrapped: ${cold.wrapped.failures} calls failed`);
    if (cold.wrapped.aborted > 0) {
      coldNotes.push(`wrapped: ${cold.wrapped.aborted} calls cut at the time limit`);
    }
    if (cold.bare.aborted > 0) {
      coldNotes.push(
        `bare: ${cold.bare.aborted} calls still pending at the time limit were cut off`,
      );
    }
    if (cold.bare.failures > 0) coldNotes.push(`bare: ${cold.bare.failures} calls failed`);
    const hitNotes = [`median of ${hits.rounds} interleaved rounds per side`];
    if (hits.requestsDuring > 0) {
      hitNotes.push(`NOT all cache hits: ${hits.requestsDuring} token requests during the rounds`);
    }
    return {
      rows: [
        {
          measure: "wrapped",
          metric: `${WRAPPED}: cold stampede, ${CALLS.toLocaleString("en-US")} calls (token requests)`,
          ours: cold.wrapped.requests,
          peer: cold.bare.requests,
          peerName: `${PEER_NAME} (bare)`,
          ratio: cold.wrapped.requests === 0 ? null : cold.bare.requests / cold.wrapped.requests,
          ratioMeaning: "peer/ours",
          target: "ours = 1",
          met:
            cold.wrapped.requests === 1 &&
            cold.wrapped.failures === 0 &&
            cold.wrapped.aborted === 0,
          note: coldNotes.join("; "),
        },
        {
          measure: "wrapped",
          metric: `${WRAPPED}: cache-hit getToken (µs/call)`,
          ours: hits.wrappedUs,
          peer: hits.bareUs,
          peerName: `${PEER_NAME} (bare)`,
          ratio: hits.bareUs / hits.wrappedUs,
          ratioMeaning: "x faster",
          target: `<= ${CACHE_HIT_MAX_US} µs`,
          met: hits.requestsDuring === 0 && hits.wrappedUs <= CACHE_HIT_MAX_US,
          note: hitNotes.join("; "),
        },
      ],
      details: { calls: CALLS, latencyMs: LATENCY_MS, cold, hits },
    };
  },
};
