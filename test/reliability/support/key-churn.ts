/**
 * Keys coming and going for a virtual day: a multi-tenant service or a gateway that sees a new
 * key every few seconds, some refused by the service, most read once and left to expire, some
 * subscribed for two hours. Run by the soak (100,000 keys) and by the default suite (a
 * smaller day); both check that what the registry keeps (entries, timers, heap) follows the
 * keys alive, not the keys ever seen.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Subscription } from "rxjs";
import { createTokenRegistry, type TokenKey } from "../../../src/streams/index.js";
import { VirtualClock } from "../../streams/harness.js";
import { ChaosError } from "./chaos-model.js";

const DAY = 86_400_000;
const LATENCY_MS = 50;
/** Tokens of an hour; a subscribed key is held for two hours, refreshed twice meanwhile. */
const LIFETIME_MS = 3_600_000;
const SUBSCRIBED_FOR_MS = 7_200_000;

/** What one churned day measured, at a checkpoint a quarter of the way and at its end. */
export interface ChurnFigures {
  readonly keysSeen: number;
  readonly refused: number;
  readonly expiredUnused: number;
  readonly subscribed: number;
  readonly requests: number;
  /** Keys the registry still remembers (seen minus forgotten), at the checkpoint and the end. */
  readonly rememberedAtQuarter: number;
  readonly rememberedAtEnd: number;
  /** Timers armed on the clock. */
  readonly timersAtQuarter: number;
  readonly timersAtEnd: number;
  /** Heap after a full collection, in bytes. */
  readonly heapAtQuarter: number;
  readonly heapAtEnd: number;
  /** Subscribed keys alive at the end (their streams hold an entry and a refresh timer each). */
  readonly liveAtEnd: number;
  /** Stream errors and get rejections that were not a refusal. */
  readonly unexpectedFailures: number;
  /** Timers and requests left after close. */
  readonly timersAfterClose: number;
}

function fullGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/**
 * Runs `keys` keys through one registry over a virtual day, a new key every `DAY / keys` ms:
 * three in ten refused, four in ten read once and left to expire, three in ten subscribed for
 * two hours.
 *
 * @example
 * ```ts
 * const figures = await churnForADay(100_000);
 * expect(figures.heapAtEnd - figures.heapAtQuarter).toBeLessThan(2 * 1024 * 1024);
 * ```
 */
export async function churnForADay(keys: number): Promise<ChurnFigures> {
  const gc = fullGc();
  const clock = new VirtualClock();
  clock.time = 1_800_000_000_000;
  let seed = 7;
  const random = (): number => {
    seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
    return seed / 4_294_967_296;
  };
  let requests = 0;
  let forgotten = 0;
  const registry = createTokenRegistry<TokenKey>({
    scheduler: clock,
    random,
    classify: (error) => ({ transient: error instanceof ChaosError && error.transient }),
    onForget: () => (forgotten += 1),
    acquire: (key, signal) => {
      requests += 1;
      const refuse = key.id.startsWith("refused/");
      return new Promise((resolve, reject) => {
        const timer = clock.schedule(() => {
          signal.removeEventListener("abort", onAbort);
          if (refuse) reject(new ChaosError(false, undefined));
          else
            resolve({
              token: `${key.id}@${clock.now()}`,
              expiresOnTimestamp: clock.now() + LIFETIME_MS,
            });
        }, LATENCY_MS);
        const onAbort = (): void => {
          timer.unsubscribe();
          reject(new Error("aborted"));
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
  });

  const every = DAY / keys;
  const held: { readonly until: number; readonly subscription: Subscription }[] = [];
  let refused = 0;
  let expiredUnused = 0;
  let subscribed = 0;
  let unexpectedFailures = 0;
  let quarter: { remembered: number; timers: number; heap: number } | undefined;
  const measure = async (): Promise<{ remembered: number; timers: number; heap: number }> => {
    await clock.advance(0);
    gc();
    return {
      remembered: refused + expiredUnused + subscribed - forgotten,
      timers: clock.pending,
      heap: process.memoryUsage().heapUsed,
    };
  };

  for (let i = 0; i < keys; i += 1) {
    const kind = i % 10;
    if (kind < 3) {
      refused += 1;
      registry.get({ id: `refused/${i}` }).then(
        () => (unexpectedFailures += 1),
        (error: unknown) => {
          if (!(error instanceof ChaosError)) unexpectedFailures += 1;
        },
      );
    } else if (kind < 7) {
      expiredUnused += 1;
      registry.get({ id: `once/${i}` }).catch(() => (unexpectedFailures += 1));
    } else {
      subscribed += 1;
      const subscription = registry
        .stream({ id: `subscribed/${i}` })
        .subscribe({ error: () => (unexpectedFailures += 1) });
      held.push({ until: clock.now() + SUBSCRIBED_FOR_MS, subscription });
    }
    while (held.length > 0 && held[0]!.until <= clock.now())
      held.shift()!.subscription.unsubscribe();
    await clock.advance(every);
    if (i + 1 === Math.floor(keys / 4)) quarter = await measure();
  }
  const end = await measure();
  const liveAtEnd = held.length;
  for (const { subscription } of held) subscription.unsubscribe();
  await registry.close();
  await clock.advance(0);
  return {
    keysSeen: keys,
    refused,
    expiredUnused,
    subscribed,
    requests,
    rememberedAtQuarter: quarter!.remembered,
    rememberedAtEnd: end.remembered,
    timersAtQuarter: quarter!.timers,
    timersAtEnd: end.timers,
    heapAtQuarter: quarter!.heap,
    heapAtEnd: end.heap,
    liveAtEnd,
    unexpectedFailures,
    timersAfterClose: clock.pending,
  };
}
