/**
 * Memory: heap bytes each cached key costs beyond its token string, after a full garbage
 * collection (the child runs with `--expose-gc`). A credential first gets warm-up keys, filled
 * the same way as the measured ones, so its fixed cost is paid before the first reading: MSAL's
 * application object and the authority metadata, but also the keep-alive sockets of the
 * concurrent fill and the code V8 compiles while the request path warms up (a profile of a
 * cold 2,000-key fill put about 1 KB per key in compiled code and TLS sockets, none of it held
 * per key). Then N more keys; the heap growth divided by N, minus the mean token length (a JWT
 * is an ASCII, one-byte string), is what a key costs. The emulator's request log is cleared
 * before each reading: it lives in the same process and is not the library's memory.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { boundedFill, heapAfterGc } from "../stats.js";
import { createOurs, createPeer, PEER_NAME, scopeOf } from "../subjects.js";

/**
 * Keys per credential, and warm-up keys filled before the first reading. The peer's fill is
 * quadratic (see key-scaling), so it gets fewer.
 */
const SIZES = {
  quick: { ours: 2_000, peer: 300, oursWarmup: 2_000, peerWarmup: 100 },
  full: { ours: 10_000, peer: 1_000, oursWarmup: 2_000, peerWarmup: 200 },
} as const;

const FILL_CONCURRENCY = 32;

/** Target: at most this many bytes per key beyond the token string. */
export const MEMORY_MAX_BYTES_PER_KEY = 1_024;

interface Reading {
  readonly keys: number;
  readonly heapGrowth: number;
  readonly meanTokenLength: number;
  readonly bytesPerKey: number;
}

async function bytesPerKey(
  context: MeasureContext,
  credential: Pick<TokenCredential, "getToken">,
  keys: number,
  warmupKeys: number,
): Promise<Reading> {
  await boundedFill(warmupKeys, FILL_CONCURRENCY, Number.POSITIVE_INFINITY, (i) =>
    credential.getToken(scopeOf("memory-warmup", i)),
  );
  context.emulator.clearRequests();
  const before = heapAfterGc();
  let tokenChars = 0;
  const filled = await boundedFill(keys, FILL_CONCURRENCY, Number.POSITIVE_INFINITY, async (i) => {
    const token = await credential.getToken(scopeOf("memory", i));
    tokenChars += token?.token.length ?? 0;
  });
  context.emulator.clearRequests();
  const after = heapAfterGc();
  const meanTokenLength = tokenChars / filled;
  return {
    keys: filled,
    heapGrowth: after - before,
    meanTokenLength,
    bytesPerKey: (after - before) / filled - meanTokenLength,
  };
}

export const memory: Measure = {
  id: "memory",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const sizes = SIZES[context.mode];
    if (globalThis.gc === undefined) throw new Error("run the bench child with --expose-gc");
    const ours = createOurs(freshTarget(context));
    let oursReading: Reading;
    try {
      oursReading = await bytesPerKey(context, ours, sizes.ours, sizes.oursWarmup);
    } finally {
      await ours.close();
    }
    const peerReading = await bytesPerKey(
      context,
      createPeer(freshTarget(context)),
      sizes.peer,
      sizes.peerWarmup,
    );
    context.log(
      `ours ${Math.round(oursReading.bytesPerKey)} B/key over ${oursReading.keys} keys, ` +
        `peer ${Math.round(peerReading.bytesPerKey)} B/key over ${peerReading.keys} keys`,
    );
    return {
      rows: [
        {
          measure: "memory",
          metric: "heap per cached key beyond the token (bytes)",
          ours: oursReading.bytesPerKey,
          peer: peerReading.bytesPerKey,
          peerName: PEER_NAME,
          ratio: peerReading.bytesPerKey / oursReading.bytesPerKey,
          ratioMeaning: "peer/ours",
          target: `<= ${MEMORY_MAX_BYTES_PER_KEY} B`,
          met: oursReading.bytesPerKey <= MEMORY_MAX_BYTES_PER_KEY,
          note:
            `ours over ${oursReading.keys.toLocaleString("en-US")} keys, peer over ` +
            `${peerReading.keys.toLocaleString("en-US")} (after ${sizes.oursWarmup.toLocaleString("en-US")} ` +
            `and ${sizes.peerWarmup.toLocaleString("en-US")} warm-up keys); mean token ` +
            `${Math.round(oursReading.meanTokenLength)} chars`,
        },
      ],
      details: { ours: oursReading, peer: peerReading },
    };
  },
};
