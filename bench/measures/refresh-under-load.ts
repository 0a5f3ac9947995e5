/**
 * Refresh under load: many keys held by `token$` subscribers, their tokens expiring at times
 * spread over minutes, run through minutes of virtual time (the credential's `scheduler`
 * option with an rxjs `VirtualTimeScheduler`) against the real emulator. It counts:
 *
 * - refreshes performed vs expected: every token whose refresh time (its
 *   `refreshAfterTimestamp`, the engine's jittered schedule) fell inside the run must have
 *   been replaced, exactly once, and no request may go unaccounted for;
 * - timer firings that refreshed nothing: a poller would fire timers when nothing is due;
 *   the scheduler counts every action it runs, and each refresh should take one;
 * - CPU while idle: with every subscription alive and nothing due, real time passes and
 *   `process.cpuUsage()` should move no more than it did in the same process before any
 *   subscription existed (work on real timers, which bypass the injected scheduler, would
 *   show here). The baseline absorbs what earlier measures left behind (idle sockets, V8's
 *   memory reducer) and the emulator, which share the process.
 *
 * Subscriptions are staggered over one refresh period of virtual time, so the refreshes are
 * spread rather than all due at one instant. The virtual clock advances in steps; after each
 * step the harness waits (in real time) until every request the step started has been
 * answered and its token emitted.
 */
import type { AccessToken } from "@azure/core-auth";
import { randomUUID } from "node:crypto";
import { VirtualTimeScheduler, type SchedulerAction, type Subscription } from "rxjs";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { collectGarbage, sleep } from "../stats.js";
import { createOurs, scopeOf } from "../subjects.js";

/**
 * The full run covers four refresh periods of every key (about 35,000 refreshes): at 900 s
 * (six periods, 52,636 refreshes) this measure alone took almost four of a full run's
 * eight and a half minutes, each refresh being a real request to the in-process emulator.
 */
const SIZES = {
  quick: { keys: 1_000, runSeconds: 400, idleMs: 500 },
  full: { keys: 10_000, runSeconds: 600, idleMs: 2_000 },
} as const;

/** Token lifetime the emulator gives this measure's application: refreshed at half-life. */
const LIFETIME_SECONDS = 300;
/** Subscriptions are spread over this much virtual time (about one refresh period). */
const STAGGER_SECONDS = 150;
const SUBSCRIBE_CHUNK = 100;
/** Virtual time per step. */
const STEP_MS = 5_000;
/** Target: at most this much CPU per second of idle real time beyond the baseline. */
export const IDLE_CPU_MAX_MS_PER_S = 5;

/** A `VirtualTimeScheduler` that counts the actions it runs. */
export class CountingVirtualTimeScheduler extends VirtualTimeScheduler {
  /** Actions run so far (a rescheduled action counts once per run). */
  firings = 0;

  override schedule<T>(
    work: (this: SchedulerAction<T>, state?: T) => void,
    delay = 0,
    state?: T,
  ): Subscription {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the action's `this` is needed too
    const counter = this;
    return super.schedule(
      function (this: SchedulerAction<T>, value?: T) {
        counter.firings++;
        work.call(this, value);
      },
      delay,
      state,
    );
  }

  /**
   * Runs every action due up to `time` and leaves the clock there.
   *
   * @example
   * ```ts
   * scheduler.advanceTo(scheduler.now() + 1_000);
   * ```
   */
  advanceTo(time: number): void {
    this.maxFrames = time;
    this.flush();
    this.frame = Math.max(this.frame, time);
  }
}

interface KeyLog {
  /** Every token the key's subscriber received, in order. */
  readonly tokens: AccessToken[];
  errored: boolean;
}

export const refreshUnderLoad: Measure = {
  id: "refresh-under-load",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const sizes = SIZES[context.mode];
    const { emulator } = context;
    const clientId = randomUUID();
    const clientSecret = `bench-${randomUUID()}`;
    emulator.registerApplication({
      clientId,
      clientSecret,
      tokenLifetimeSeconds: LIFETIME_SECONDS,
    });
    const target = { ...freshTarget(context), clientId, clientSecret };
    const tenant = target.tenantId;

    const scheduler = new CountingVirtualTimeScheduler();
    // Start the virtual clock at the real epoch, so timestamps look like real ones.
    scheduler.frame = Date.now();
    const start = scheduler.now();
    const credential = createOurs(target, { scheduler });

    const logs: KeyLog[] = [];
    let emissions = 0;
    let errors = 0;
    let firstError: unknown;
    let staleDeliveries = 0;
    const subscriptions: Subscription[] = [];
    const subscribe = (index: number): void => {
      const log: KeyLog = { tokens: [], errored: false };
      logs.push(log);
      subscriptions.push(
        credential.token$(scopeOf("refresh", index)).subscribe({
          next: (token) => {
            emissions++;
            if (token.expiresOnTimestamp <= scheduler.now()) staleDeliveries++;
            log.tokens.push(token);
          },
          error: (error: unknown) => {
            errors++;
            log.errored = true;
            firstError ??= error;
          },
        }),
      );
    };
    const requests = (): number => emulator.requestCount({ tenant });

    /**
     * Whether every key has what it should have at the current virtual time: a first token,
     * and a latest token whose refresh time has not passed (or an error to show for it).
     */
    const upToDate = (): boolean => {
      const now = scheduler.now();
      for (const log of logs) {
        if (log.errored) continue;
        const latest = log.tokens[log.tokens.length - 1];
        if (latest === undefined) return false;
        if ((latest.refreshAfterTimestamp ?? latest.expiresOnTimestamp) <= now) return false;
      }
      return true;
    };

    /**
     * Waits (in real time) until every key is up to date and every request the emulator saw
     * has become a token or an error, and it stays so for `quietChecks` checks. Counting
     * requests alone is not enough: right after a timer fires, the request may not have
     * reached the emulator yet, and a virtual clock moved on meanwhile would time it out.
     */
    const settle = async (quietChecks: number): Promise<void> => {
      const deadline = performance.now() + 20_000;
      let quiet = 0;
      while (quiet < quietChecks) {
        if (performance.now() > deadline) {
          const cause =
            firstError instanceof Error
              ? `; first stream error: ${firstError.name}: ${firstError.message}`
              : "";
          throw new Error(
            `${requests()} requests, ${emissions} tokens emitted and ${errors} stream errors never settled${cause}`,
          );
        }
        await sleep(1);
        quiet = upToDate() && requests() === emissions + errors ? quiet + 1 : 0;
      }
    };

    let flushCpuUs = 0;
    let idleStepCpuUs = 0;
    let idleStepFirings = 0;
    const step = async (to: number): Promise<void> => {
      const firingsBefore = scheduler.firings;
      const requestsBefore = requests();
      const cpuBefore = process.cpuUsage();
      scheduler.advanceTo(to);
      const cpu = process.cpuUsage(cpuBefore);
      flushCpuUs += cpu.user + cpu.system;
      const fired = scheduler.firings - firingsBefore;
      if (fired === 0) return;
      await settle(3);
      if (requests() === requestsBefore) {
        idleStepFirings += fired;
        idleStepCpuUs += cpu.user + cpu.system;
      }
    };

    /** CPU milliseconds per second of real time spent idle for `ms`. */
    const idleCpuMsPerS = async (ms: number): Promise<number> => {
      collectGarbage();
      await sleep(100);
      const before = process.cpuUsage();
      const idleStart = performance.now();
      await sleep(ms);
      const used = process.cpuUsage(before);
      return (used.user + used.system) / 1_000 / ((performance.now() - idleStart) / 1_000);
    };

    try {
      const baselineCpuMsPerS = await idleCpuMsPerS(sizes.idleMs);
      // Staggered subscriptions.
      const chunks = Math.ceil(sizes.keys / SUBSCRIBE_CHUNK);
      let time = start;
      for (let chunk = 0; chunk < chunks; chunk++) {
        const chunkAt = start + Math.round((chunk * STAGGER_SECONDS * 1_000) / chunks);
        for (; time + STEP_MS <= chunkAt; time += STEP_MS) await step(time + STEP_MS);
        await step(chunkAt);
        time = chunkAt;
        const first = chunk * SUBSCRIBE_CHUNK;
        for (let i = first; i < Math.min(sizes.keys, first + SUBSCRIBE_CHUNK); i++) subscribe(i);
        await settle(3);
      }
      context.log(`${sizes.keys} keys subscribed; running ${sizes.runSeconds} s of virtual time`);
      const initialRequests = requests();
      const firingsAfterSubscribe = scheduler.firings;
      const end = start + sizes.runSeconds * 1_000;
      for (; time < end; time = Math.min(end, time + STEP_MS)) {
        await step(Math.min(end, time + STEP_MS));
      }
      await settle(20);

      // Idle: every subscription alive, nothing in flight, real time passing.
      const subscribedCpuMsPerS = await idleCpuMsPerS(sizes.idleMs);
      const idleCpuExtra = Math.max(0, subscribedCpuMsPerS - baselineCpuMsPerS);

      // Accounting.
      const endTime = scheduler.now();
      let expected = 0;
      let performed = 0;
      let early = 0;
      let maxLatenessMs = 0;
      for (const log of logs) {
        performed += Math.max(0, log.tokens.length - 1);
        for (let j = 0; j < log.tokens.length; j++) {
          const token = log.tokens[j]!;
          const due = token.refreshAfterTimestamp ?? token.expiresOnTimestamp;
          if (due <= endTime) expected++;
          const next = log.tokens[j + 1];
          if (next !== undefined) {
            // The next token's request started at its expiry minus its lifetime.
            const startedAt = next.expiresOnTimestamp - LIFETIME_SECONDS * 1_000;
            if (startedAt < due) early++;
            maxLatenessMs = Math.max(maxLatenessMs, startedAt - due);
          }
        }
      }
      const totalRequests = requests();
      const refreshRequests = totalRequests - initialRequests;
      const refreshFirings = scheduler.firings - firingsAfterSubscribe;
      const idleFirings = Math.max(0, refreshFirings - refreshRequests);
      const refreshesOk =
        performed === expected &&
        totalRequests === emissions &&
        errors === 0 &&
        staleDeliveries === 0 &&
        early === 0;
      const notes: string[] = [
        `${sizes.keys.toLocaleString("en-US")} keys, ${LIFETIME_SECONDS} s tokens, subscriptions spread over ${STAGGER_SECONDS} s, ${sizes.runSeconds} s of virtual time`,
      ];
      if (context.mode === "quick") notes.push("--quick: 1,000 keys; the full run holds 10,000");
      if (errors > 0) notes.push(`${errors} streams errored`);
      if (staleDeliveries > 0) notes.push(`${staleDeliveries} expired tokens delivered`);
      if (early > 0) notes.push(`${early} refreshes before their refresh time`);
      if (totalRequests !== emissions) {
        notes.push(`${totalRequests} requests for ${emissions} tokens delivered`);
      }
      notes.push(`latest refresh ${maxLatenessMs} ms (virtual) after its due time`);

      subscriptions.forEach((subscription) => subscription.unsubscribe());
      const actionsAfterUnsubscribe = scheduler.actions.length;
      return {
        rows: [
          {
            measure: "refresh-under-load",
            metric: "refresh under load: refreshes done (of expected)",
            ours: performed,
            peer: null,
            peerName: "—",
            ratio: expected === 0 ? null : performed / expected,
            ratioMeaning: `done/expected, expected ${expected}`,
            target: "all, once each",
            met: refreshesOk,
            note: notes.join("; "),
          },
          {
            measure: "refresh-under-load",
            metric: "refresh under load: timer firings that refreshed nothing",
            ours: idleFirings,
            peer: null,
            peerName: "—",
            ratio: refreshRequests === 0 ? null : refreshFirings / refreshRequests,
            ratioMeaning: "firings per refresh",
            target: "0",
            met: idleFirings === 0,
            note: `${refreshFirings} timer firings for ${refreshRequests} refresh requests; CPU in all timer firings ${(flushCpuUs / 1_000).toFixed(1)} ms, in firings that started no request ${(idleStepCpuUs / 1_000).toFixed(1)} ms`,
          },
          {
            measure: "refresh-under-load",
            metric: "refresh under load: CPU while nothing is due (ms/s)",
            ours: idleCpuExtra,
            peer: null,
            peerName: "—",
            ratio: null,
            ratioMeaning: "",
            target: `<= ${IDLE_CPU_MAX_MS_PER_S} ms/s`,
            met: idleCpuExtra <= IDLE_CPU_MAX_MS_PER_S,
            note: `beyond the same process idle before subscribing: ${subscribedCpuMsPerS.toFixed(2)} ms/s with ${sizes.keys.toLocaleString("en-US")} live subscriptions vs ${baselineCpuMsPerS.toFixed(2)} ms/s before, over ${sizes.idleMs} ms of real time each`,
          },
        ],
        details: {
          keys: sizes.keys,
          lifetimeSeconds: LIFETIME_SECONDS,
          runSeconds: sizes.runSeconds,
          expected,
          performed,
          emissions,
          totalRequests,
          initialRequests,
          refreshRequests,
          refreshFirings,
          idleStepFirings,
          idleStepCpuUs,
          flushCpuUs,
          maxLatenessMs,
          early,
          staleDeliveries,
          errors,
          baselineCpuMsPerS,
          subscribedCpuMsPerS,
          actionsAfterUnsubscribe,
        },
      };
    } finally {
      subscriptions.forEach((subscription) => subscription.unsubscribe());
      await credential.close();
      emulator.removeApplication(clientId);
    }
  },
};
