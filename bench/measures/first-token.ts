/**
 * First token: wall time from a fresh credential to its first token, ours divided by a raw
 * `@azure/msal-node` `acquireTokenByClientCredential` against the same endpoint (ours is built
 * on it, so the ratio is our overhead). Median of several fresh credentials and applications,
 * alternating which goes first; `@azure/identity` is timed the same way for reference.
 *
 * Every sample starts cold, as a program's first token does: a TCP and TLS handshake
 * included. Ours and `@azure/identity` build an agent per credential, but msal-node 7 sends
 * through global `fetch`, whose process-wide connection pool would hand raw MSAL the previous
 * sample's open connection; so the pool is replaced before each sample. `@azure/identity`
 * cannot be made cold that way (`@azure/core-client`'s `getCachedDefaultHttpClient` keeps one
 * HTTP client, with its agents, per process), so its figure is shown for reference only.
 */
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { median } from "../stats.js";
import { createOurs, createPeer, createRawMsal, RAW_MSAL_NAME } from "../subjects.js";

const SIZES = {
  quick: { warmup: 3, samples: 11 },
  full: { warmup: 5, samples: 41 },
} as const;

/** Target: ours takes at most this multiple of raw MSAL's time. */
export const FIRST_TOKEN_MAX_RATIO = 1.1;

/**
 * Where Node's bundled undici keeps the dispatcher of global `fetch` (`undici/lib/global.js`:
 * `Symbol.for('undici.globalDispatcher.1')`). Node exposes no API to reset it, and the
 * `undici` package is not a dependency, so a fresh one is made from the same class.
 */
const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

interface Dispatcher {
  close(): Promise<void>;
}

/** Replaces global `fetch`'s connection pool with an empty one and closes the old one. */
async function coldFetchPool(): Promise<void> {
  const holder = globalThis as unknown as Record<symbol, Dispatcher | undefined>;
  const current = holder[GLOBAL_DISPATCHER];
  if (current === undefined) return;
  const DispatcherClass = current.constructor as new () => Dispatcher;
  holder[GLOBAL_DISPATCHER] = new DispatcherClass();
  await current.close();
}

async function timeMs(task: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await task();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export const firstToken: Measure = {
  id: "first-token",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const sizes = SIZES[context.mode];
    const scope = "https://first-token.bench.example/.default";
    const ours: number[] = [];
    const raw: number[] = [];
    const peer: number[] = [];
    const subjects: Record<"ours" | "raw" | "peer", () => Promise<number>> = {
      ours: async () => {
        // Construction counts: it is part of what a program pays before its first token.
        const start = process.hrtime.bigint();
        const credential = createOurs(freshTarget(context));
        await credential.getToken(scope);
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        await credential.close();
        return ms;
      },
      raw: () =>
        timeMs(() =>
          createRawMsal(freshTarget(context)).acquireTokenByClientCredential({ scopes: [scope] }),
        ),
      peer: () => timeMs(() => createPeer(freshTarget(context)).getToken(scope)),
    };
    const order: readonly (readonly ("ours" | "raw" | "peer")[])[] = [
      ["ours", "raw", "peer"],
      ["raw", "ours", "peer"],
      ["peer", "raw", "ours"],
    ];
    for (let i = 0; i < sizes.warmup + sizes.samples; i++) {
      for (const name of order[i % order.length]!) {
        await coldFetchPool();
        const ms = await subjects[name]();
        if (i < sizes.warmup) continue;
        (name === "ours" ? ours : name === "raw" ? raw : peer).push(ms);
      }
    }
    const oursMs = median(ours);
    const rawMs = median(raw);
    const peerMs = median(peer);
    return {
      rows: [
        {
          measure: "first-token",
          metric: "first token (ms)",
          ours: oursMs,
          peer: rawMs,
          peerName: RAW_MSAL_NAME,
          ratio: oursMs / rawMs,
          ratioMeaning: "ours/peer",
          target: `<= ${FIRST_TOKEN_MAX_RATIO}x raw MSAL`,
          met: oursMs / rawMs <= FIRST_TOKEN_MAX_RATIO,
          note: `median of ${sizes.samples} fresh clients each (after ${sizes.warmup} warm-up rounds); @azure/identity (for reference, on a warm connection: @azure/core-client shares one HTTP client per process): ${peerMs.toFixed(2)} ms`,
        },
      ],
      details: { oursMs: ours, rawMs: raw, peerMs: peer },
    };
  },
};
