/**
 * Cold stampede: many concurrent `getToken` calls for one scope on a fresh credential while
 * the emulator takes 30 ms per token: how many token requests reached the emulator. Ours
 * must make exactly one (single-flight); MSAL, and so `@azure/identity`, has no single-flight
 * for client credentials (DESIGN.md, facts) and sends one request per caller.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { sleep } from "../stats.js";
import { createOurs, createPeer, PEER_NAME, scopeOf } from "../subjects.js";

export const CALLS = 10_000;
export const LATENCY_MS = 30;
/**
 * The peer opens a connection and the emulator signs a token per caller: 10,000 of them
 * take most of a minute on two cores, so `--quick` asks the peer for fewer.
 */
export const PEER_CALLS = { quick: 1_000, full: CALLS } as const;
/**
 * How long a stampede may take. 10,000 simultaneous connections overflow the listen backlog
 * of the emulator's socket, and the kernel's SYN retransmissions (1 s, 3 s, 7 s, ...) left a
 * full run waiting for minutes with an idle CPU; calls still pending at the limit are
 * aborted (so nothing carries on into the next measure) and counted.
 */
const TIME_LIMIT_MS = { quick: 20_000, full: 60_000 } as const;

/**
 * `calls` concurrent `getToken` calls for one scope on `credential`, cut at the time limit:
 * how many token requests reached the emulator for `tenant`, and how the calls ended.
 *
 * @example
 * ```ts
 * const { requests } = await stampede(context, createOurs(target), target.tenantId, 10_000);
 * ```
 */
export async function stampede(
  context: MeasureContext,
  credential: Pick<TokenCredential, "getToken">,
  tenant: string,
  calls: number,
): Promise<{
  requests: number;
  failures: number;
  aborted: number;
  distinctTokens: number;
  wallMs: number;
}> {
  const scope = scopeOf("stampede", 0);
  const before = context.emulator.requestCount({ tenant });
  const start = performance.now();
  const limit = new AbortController();
  const timer = setTimeout(() => limit.abort(), TIME_LIMIT_MS[context.mode]);
  let pending = calls;
  let abortedAtLimit = 0;
  limit.signal.addEventListener("abort", () => (abortedAtLimit = pending), { once: true });
  const tokens = new Set<string>();
  let failures = 0;
  const all = Promise.allSettled(
    Array.from({ length: calls }, () =>
      credential.getToken(scope, { abortSignal: limit.signal }).then(
        (token) => {
          pending--;
          if (token === null) failures++;
          else tokens.add(token.token);
        },
        () => {
          pending--;
          failures++;
        },
      ),
    ),
  );
  // A library that ignores its abort signal must not hang the bench either.
  await Promise.race([all, sleep(TIME_LIMIT_MS[context.mode] + 5_000)]);
  clearTimeout(timer);
  const wallMs = performance.now() - start;
  const stillPending = pending;
  return {
    requests: context.emulator.requestCount({ tenant }) - before,
    failures: Math.max(0, failures - (abortedAtLimit - stillPending)),
    aborted: abortedAtLimit,
    distinctTokens: tokens.size,
    wallMs,
  };
}

export const coldStampede: Measure = {
  id: "stampede",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    context.emulator.setLatency(LATENCY_MS);
    try {
      const oursTarget = freshTarget(context);
      const ours = createOurs(oursTarget);
      let oursResult;
      try {
        context.log(`ours: ${CALLS} concurrent calls`);
        oursResult = await stampede(context, ours, oursTarget.tenantId, CALLS);
      } finally {
        await ours.close();
      }
      const peerCalls = PEER_CALLS[context.mode];
      const peerTarget = freshTarget(context);
      context.log(`peer: ${peerCalls} concurrent calls`);
      const peerResult = await stampede(
        context,
        createPeer(peerTarget),
        peerTarget.tenantId,
        peerCalls,
      );
      const notes = [`${LATENCY_MS} ms emulator latency`];
      if (peerCalls !== CALLS) notes.push(`--quick: the peer got ${peerCalls} calls, not ${CALLS}`);
      if (oursResult.failures > 0) notes.push(`ours: ${oursResult.failures} calls failed`);
      if (oursResult.aborted > 0)
        notes.push(`ours: ${oursResult.aborted} calls cut at the time limit`);
      if (peerResult.aborted > 0) {
        notes.push(
          `peer: ${peerResult.aborted} calls still pending after ${TIME_LIMIT_MS[context.mode] / 1_000} s were aborted (its count is a lower bound)`,
        );
      }
      if (peerResult.failures > 0) notes.push(`peer: ${peerResult.failures} calls failed`);
      return {
        rows: [
          {
            measure: "stampede",
            metric: `cold stampede, ${CALLS.toLocaleString("en-US")} calls (token requests)`,
            ours: oursResult.requests,
            peer: peerResult.requests,
            peerName: PEER_NAME,
            ratio: oursResult.requests === 0 ? null : peerResult.requests / oursResult.requests,
            ratioMeaning: "peer/ours",
            target: "ours = 1",
            met: oursResult.requests === 1 && oursResult.failures === 0 && oursResult.aborted === 0,
            note: notes.join("; "),
          },
        ],
        details: {
          calls: CALLS,
          peerCalls,
          latencyMs: LATENCY_MS,
          ours: oursResult,
          peer: peerResult,
        },
      };
    } finally {
      context.emulator.setLatency(0);
    }
  },
};
