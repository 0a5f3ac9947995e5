/**
 * Cold stampede: many concurrent `getToken` calls for one scope on a fresh credential while
 * the emulator takes 30 ms per token: how many token requests reached the emulator. Ours
 * must make exactly one (single-flight); MSAL, and so `@azure/identity`, has no single-flight
 * for client credentials (DESIGN.md, facts) and sends one request per caller.
 */
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import {
  runStampedeProcess,
  type StampedeOutcome,
  type StampedeSubject,
} from "../stampede-process.js";
import { PEER_NAME, scopeOf } from "../subjects.js";

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
 * counted and cut off with their process (so nothing carries on into the next measure).
 */
const TIME_LIMIT_MS = { quick: 20_000, full: 60_000 } as const;

/**
 * `calls` concurrent `getToken` calls for one scope on a fresh `subject` credential, with the
 * emulator taking {@link LATENCY_MS} per token, in a process of its own cut at the time limit
 * (see `bench/stampede-process.ts`): how many token requests reached the emulator, and how the
 * calls ended.
 *
 * @example
 * ```ts
 * const { requests } = await stampede(context, "ours", 10_000);
 * ```
 */
export function stampede(
  context: MeasureContext,
  subject: StampedeSubject,
  calls: number,
): Promise<StampedeOutcome> {
  return runStampedeProcess({
    subject,
    tls: context.tls,
    clientId: context.clientId,
    clientSecret: context.clientSecret,
    scope: scopeOf("stampede", 0),
    calls,
    timeLimitMs: TIME_LIMIT_MS[context.mode],
    latencyMs: LATENCY_MS,
  });
}

export const coldStampede: Measure = {
  id: "stampede",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    context.log(`ours: ${CALLS} concurrent calls`);
    const oursResult = await stampede(context, "ours", CALLS);
    const peerCalls = PEER_CALLS[context.mode];
    context.log(`peer: ${peerCalls} concurrent calls`);
    const peerResult = await stampede(context, "peer", peerCalls);
    const notes = [`${LATENCY_MS} ms emulator latency`];
    if (peerCalls !== CALLS) notes.push(`--quick: the peer got ${peerCalls} calls, not ${CALLS}`);
    if (oursResult.failures > 0) notes.push(`ours: ${oursResult.failures} calls failed`);
    if (oursResult.aborted > 0)
      notes.push(`ours: ${oursResult.aborted} calls cut at the time limit`);
    if (peerResult.aborted > 0) {
      notes.push(
        `peer: ${peerResult.aborted} calls still pending after ${TIME_LIMIT_MS[context.mode] / 1_000} s were cut off (its count is a lower bound)`,
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
  },
};
