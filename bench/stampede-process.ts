/**
 * A cold stampede in a process of its own: an emulator (with the latency asked for) and
 * `calls` concurrent `getToken` calls for one scope on a fresh credential against it, on one
 * thread as in the measuring process, cut at a time limit; then the process is killed.
 *
 * Why a process: `@azure/identity` does not stop a token request when the `abortSignal` of
 * `getToken` fires (MSAL's `acquireTokenByClientCredential` takes no signal), so after a
 * 10,000-call stampede thousands of its connections and retries carried on in the measuring
 * process for minutes (a full run, instrumented: 6,500 sockets and 1,278 pending connects
 * still open when the next measure began, the emulator still answering them). They took the
 * CPU from the measures after it, made a later first token time out and moved the heap under
 * the memory readings. Killing the process ends all of it at once. The emulator comes along:
 * with the client alone in a process of its own, flooding the measuring process's emulator
 * from another core, the peer's 10,000 callers got no token request through in 60 s (its
 * authority discovery never finished), which is not the figure this measure reports.
 */
import type { TokenCredential } from "@azure/core-auth";
import { randomUUID } from "node:crypto";
import { answerParent, benchProcessConfig, forkBenchProcess } from "./bench-process.js";
import { startAppEmulator } from "./emulator-process.js";
import { sleep } from "./stats.js";
import { createOurs, createPeer, createWrappedPeer, type BenchTarget } from "./subjects.js";

/** Which credential stampedes: ours, `@azure/identity`'s, or ours over `@azure/identity`'s. */
export type StampedeSubject = "ours" | "peer" | "wrapped";

export interface StampedeConfig {
  readonly subject: StampedeSubject;
  /** The emulator's certificate (the one `NODE_EXTRA_CA_CERTS` trusts) and key. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope: string;
  readonly calls: number;
  readonly timeLimitMs: number;
  /** The emulator's latency per token request. */
  readonly latencyMs: number;
}

/** How many token requests reached the emulator, and how the calls ended. */
export interface StampedeOutcome {
  /** Token requests the emulator received, counted at the end of the stampede. */
  readonly requests: number;
  /** Calls that failed before the time limit (or resolved with `null`). */
  readonly failures: number;
  /** Calls still pending at the time limit, cut off there. */
  readonly aborted: number;
  readonly distinctTokens: number;
  readonly wallMs: number;
}

const CONFIG_VARIABLE = "RX_IDENTITY_BENCH_STAMPEDE";

/**
 * Runs a stampede in a process of its own and kills it once it has answered (or once the
 * time limit and a grace period have passed without an answer).
 *
 * @example
 * ```ts
 * const { requests } = await runStampedeProcess({
 *   ...{ subject: "peer", tls, clientId, clientSecret, scope },
 *   ...{ calls: 10_000, timeLimitMs: 60_000, latencyMs: 30 },
 * });
 * ```
 */
export async function runStampedeProcess(config: StampedeConfig): Promise<StampedeOutcome> {
  const child = forkBenchProcess<StampedeOutcome>(import.meta.url, CONFIG_VARIABLE, config);
  // Startup (tsx, the libraries) is not part of the limit; a stuck child must not hang the bench.
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the ${config.subject} stampede process did not answer`)),
      config.timeLimitMs + 60_000,
    );
  });
  try {
    return await Promise.race([child.message, stuck]);
  } finally {
    clearTimeout(timer);
    await child.stop();
  }
}

function credentialOf(
  subject: StampedeSubject,
  target: BenchTarget,
): Pick<TokenCredential, "getToken"> {
  switch (subject) {
    case "ours":
      return createOurs(target);
    case "peer":
      return createPeer(target);
    case "wrapped":
      return createWrappedPeer(target);
  }
}

async function stampede(config: StampedeConfig): Promise<StampedeOutcome> {
  const emulator = await startAppEmulator(config);
  emulator.setLatency(config.latencyMs);
  const target: BenchTarget = {
    authorityHost: emulator.authorityHost,
    host: emulator.host,
    tenantId: randomUUID(),
    clientId: config.clientId,
    clientSecret: config.clientSecret,
  };
  const credential = credentialOf(config.subject, target);
  const start = performance.now();
  const limit = new AbortController();
  const timer = setTimeout(() => limit.abort(), config.timeLimitMs);
  let pending = config.calls;
  let abortedAtLimit = 0;
  limit.signal.addEventListener("abort", () => (abortedAtLimit = pending), { once: true });
  const tokens = new Set<string>();
  let failures = 0;
  const all = Promise.allSettled(
    Array.from({ length: config.calls }, () =>
      credential.getToken(config.scope, { abortSignal: limit.signal }).then(
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
  // A library that ignores its abort signal must not hold the answer either.
  await Promise.race([all, sleep(config.timeLimitMs + 5_000)]);
  clearTimeout(timer);
  const wallMs = performance.now() - start;
  return {
    requests: emulator.requestCount({ tenant: target.tenantId }),
    // Calls rejected by the abort at the limit are counted as cut off, not as failures.
    failures: Math.max(0, failures - (abortedAtLimit - pending)),
    aborted: abortedAtLimit,
    distinctTokens: tokens.size,
    wallMs,
  };
}

const config = benchProcessConfig<StampedeConfig>(CONFIG_VARIABLE);
if (config !== undefined) {
  stampede(config)
    .then(answerParent)
    .catch((error: unknown) => {
      process.stderr.write(`bench stampede process failed: ${String(error)}\n`);
      process.exit(1);
    });
}
