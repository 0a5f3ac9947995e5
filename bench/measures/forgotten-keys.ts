/**
 * Forgotten keys: heap kept per key that holds nothing any longer, after a full garbage
 * collection, the way a multi-tenant service or a gateway with caller-chosen scopes sees them:
 *
 * - refused: every key a distinct scope the service refuses (`invalid_scope`), asked once;
 * - expired: every key a distinct scope read once, whose token then expires unused, in waves
 *   (keys keep coming: new ones pay for forgetting the old ones).
 *
 * Ours runs on a clock moved forward two hours between waves (its `scheduler` option), so a
 * wave expires with no waiting; the peer has no clock to move, so its tokens live 2 s (an
 * emulator of their own) and it waits for them between waves. Warm-up keys of the same kind
 * come before the first reading (compiled code, keep-alive sockets). The emulators run in
 * processes of their own: their memory is not counted.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { SchedulerLike } from "rxjs";
import { unrefScheduler } from "../../src/streams/index.js";
import { startEmulatorProcess } from "../emulator-process.js";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import type { MetricRow } from "../protocol.js";
import { boundedFill, heapAfterGc, sleep } from "../stats.js";
import { createOurs, createPeer, PEER_NAME, type BenchTarget } from "../subjects.js";

/**
 * Keys per reading, keys per wave (expired), warm-up keys (at least three waves, so both
 * readings are taken in the same state: the last wave just expired, the ones before swept),
 * the time budget of each reading, and the peer's for its expired warm-up and reading each.
 */
const SIZES = {
  quick: {
    ours: 3_000,
    peerRefused: 500,
    peerExpired: 400,
    wave: 200,
    warmup: 600,
    budgetMs: 20_000,
    peerExpiredBudgetMs: 20_000,
  },
  full: {
    ours: 100_000,
    peerRefused: 8_000,
    peerExpired: 3_000,
    wave: 1_000,
    warmup: 3_000,
    budgetMs: 100_000,
    peerExpiredBudgetMs: 60_000,
  },
} as const;

/** Lifetime of the peer's tokens, and how long it waits for a wave to expire. */
const PEER_LIFETIME_S = 2;
const FILL_CONCURRENCY = 32;

/** Target: heap kept per forgotten key, in bytes. */
export const FORGOTTEN_KEY_MAX_BYTES = 64;

/** A scope the emulator refuses (`invalid_scope`: no `/.default`). */
const refusedScope = (prefix: string, i: number): string =>
  `https://${prefix}-${i}.bench.example/read`;
const expiringScope = (prefix: string, i: number): string =>
  `https://${prefix}-${i}.bench.example/.default`;

/** A clock `offsetMs` ahead of the real one, with real (unref'd) timers. */
function movableClock(): { readonly scheduler: SchedulerLike; advance(ms: number): void } {
  let offsetMs = 0;
  return {
    scheduler: {
      now: () => Date.now() + offsetMs,
      schedule: unrefScheduler.schedule.bind(unrefScheduler),
    },
    advance: (ms) => (offsetMs += ms),
  };
}

interface Reading {
  readonly keys: number;
  /** `heapUsed` after minus before, both after a full collection; may be below zero. */
  readonly heapGrowth: number;
  /** The growth per key, 0 when the heap shrank. */
  readonly bytesPerKey: number;
}

/**
 * A reading of `heapGrowth` over `keys`. What is kept of a forgotten key is close to
 * nothing, so what else the heap holds between two readings (a full run, measures in
 * isolation: about 0.2 MB less after 53,349 refused keys, -5 B/key) can make the growth
 * negative: that counts as no growth, and the note says so.
 */
function reading(keys: number, heapGrowth: number): Reading {
  return { keys, heapGrowth, bytesPerKey: Math.max(0, heapGrowth) / Math.max(keys, 1) };
}

function logReading(context: MeasureContext, what: string, r: Reading): void {
  context.log(
    `${what}: ${r.keys} keys, ${Math.round(r.bytesPerKey)} B/key ` +
      `(heap growth ${Math.round(r.heapGrowth / 1_024)} KB)`,
  );
}

function shrankNote(who: string, r: Reading): string[] {
  if (r.heapGrowth >= 0) return [];
  return [
    `${who}: the heap shrank by ${Math.round(-r.heapGrowth / 1_024)} KB over ` +
      `${r.keys.toLocaleString("en-US")} keys, counted as 0`,
  ];
}

/** Asks for `count` refused scopes once each (up to `budgetMs`); every call must reject. */
async function refuse(
  credential: Pick<TokenCredential, "getToken">,
  prefix: string,
  count: number,
  budgetMs: number,
): Promise<number> {
  let accepted = 0;
  const done = await boundedFill(count, FILL_CONCURRENCY, budgetMs, (i) =>
    credential.getToken(refusedScope(prefix, i)).then(
      () => (accepted += 1),
      () => undefined,
    ),
  );
  if (accepted > 0) throw new Error(`${accepted} refused scopes got a token`);
  return done;
}

async function refusedReading(
  credential: Pick<TokenCredential, "getToken">,
  count: number,
  warmup: number,
  budgetMs: number,
): Promise<Reading> {
  await refuse(credential, "refused-warmup", warmup, Number.POSITIVE_INFINITY);
  const before = heapAfterGc();
  const keys = await refuse(credential, "refused", count, budgetMs);
  return reading(keys, heapAfterGc() - before);
}

/** Waves of keys read once; `expire` makes the last wave's tokens expire. */
async function expiredReading(
  credential: Pick<TokenCredential, "getToken">,
  waveSize: number,
  count: number,
  warmup: number,
  budgetMs: number,
  expire: () => Promise<void>,
): Promise<Reading> {
  const wave = async (prefix: string, from: number, size: number, budget: number) => {
    const filled = await boundedFill(size, FILL_CONCURRENCY, budget, (i) =>
      credential.getToken(expiringScope(prefix, from + i)),
    );
    await expire();
    return filled;
  };
  // The warm-up has a budget too: the peer's every lookup scans every token it still holds,
  // expired ones included, so its waves grow slower as they go (unbounded, a full run spent
  // over five minutes here, the event loop blocked for 10 s at a time).
  const warmupDeadline = performance.now() + budgetMs;
  for (let from = 0; from < warmup && performance.now() < warmupDeadline; from += waveSize) {
    await wave(
      "expired-warmup",
      from,
      Math.min(waveSize, warmup - from),
      warmupDeadline - performance.now(),
    );
  }
  const before = heapAfterGc();
  const deadline = performance.now() + budgetMs;
  let keys = 0;
  while (keys < count && performance.now() < deadline) {
    keys += await wave(
      "expired",
      keys,
      Math.min(waveSize, count - keys),
      deadline - performance.now(),
    );
  }
  return reading(keys, heapAfterGc() - before);
}

export const forgottenKeys: Measure = {
  id: "forgotten-keys",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    if (globalThis.gc === undefined) throw new Error("run the bench child with --expose-gc");
    const sizes = SIZES[context.mode];
    const app = {
      tls: context.tls,
      clientId: context.clientId,
      clientSecret: context.clientSecret,
    };
    const remote = await startEmulatorProcess(app);
    const shortLived = await startEmulatorProcess({
      ...app,
      tokenLifetimeSeconds: PEER_LIFETIME_S,
    });
    const target = (emulator: typeof remote): BenchTarget => ({
      ...freshTarget(context),
      authorityHost: emulator.authorityHost,
      host: emulator.host,
    });
    try {
      const ours = createOurs(target(remote));
      const clock = movableClock();
      const oursMoved = createOurs(target(remote), { scheduler: clock.scheduler });
      let oursRefused: Reading;
      let oursExpired: Reading;
      try {
        oursRefused = await refusedReading(ours, sizes.ours, sizes.warmup, sizes.budgetMs);
        logReading(context, "ours: refused", oursRefused);
        oursExpired = await expiredReading(
          oursMoved,
          sizes.wave,
          sizes.ours,
          sizes.warmup,
          sizes.budgetMs,
          () => {
            clock.advance(2 * 3_600_000);
            return Promise.resolve();
          },
        );
        logReading(context, "ours: expired", oursExpired);
      } finally {
        await Promise.all([ours.close(), oursMoved.close()]);
      }
      const peerRefused = await refusedReading(
        createPeer(target(remote)),
        sizes.peerRefused,
        sizes.wave * 3,
        sizes.budgetMs,
      );
      logReading(context, "peer: refused", peerRefused);
      const peerExpired = await expiredReading(
        createPeer(target(shortLived)),
        sizes.wave,
        sizes.peerExpired,
        // One wave: the peer sweeps nothing, so there is no swept state to reach first, and
        // every token it holds slows each later lookup (three waves left 166 keys measured).
        sizes.wave,
        sizes.peerExpiredBudgetMs,
        () => sleep(PEER_LIFETIME_S * 1_000 + 100),
      );
      logReading(context, "peer: expired", peerExpired);
      const row = (
        what: string,
        oursReading: Reading,
        peerReading: Reading,
        how: string,
      ): MetricRow => ({
        measure: "forgotten-keys",
        metric: `heap kept per ${what} key (bytes)`,
        ours: oursReading.bytesPerKey,
        peer: peerReading.bytesPerKey,
        peerName: PEER_NAME,
        ratio: peerReading.bytesPerKey / Math.max(oursReading.bytesPerKey, 1),
        ratioMeaning: "peer/ours, ours at least 1 B",
        target: `< ${FORGOTTEN_KEY_MAX_BYTES} B`,
        met: oursReading.bytesPerKey < FORGOTTEN_KEY_MAX_BYTES,
        note: [
          `ours over ${oursReading.keys.toLocaleString("en-US")} keys, peer over ` +
            `${peerReading.keys.toLocaleString("en-US")}; ${how}`,
          ...shrankNote("ours", oursReading),
          ...shrankNote("peer", peerReading),
        ].join("; "),
      });
      return {
        rows: [
          row(
            "refused",
            oursRefused,
            peerRefused,
            "each a distinct scope refused with invalid_scope, asked once",
          ),
          row(
            "expired",
            oursExpired,
            peerExpired,
            `waves of ${sizes.wave.toLocaleString("en-US")} keys read once, each wave expired before the next (ours: clock moved 2 h; peer: ${PEER_LIFETIME_S} s tokens, waited for)`,
          ),
        ],
        details: { oursRefused, oursExpired, peerRefused, peerExpired, wave: sizes.wave },
      };
    } finally {
      await Promise.all([remote.stop(), shortLived.stop()]);
    }
  },
};
