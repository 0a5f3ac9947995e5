import type { GetTokenOptions } from "@azure/core-auth";

/** The caller's `abortSignal`: a DOM `AbortSignal` or an older core library's `AbortSignalLike`. */
type SignalLike = NonNullable<GetTokenOptions["abortSignal"]>;

/** The calls waiting on one caller signal, and its one listener. */
interface Group {
  readonly calls: Set<AbortController>;
  readonly onAbort: () => void;
}

/**
 * One `abort` listener per caller signal, however many calls share it. A request-scoped
 * signal passed through a handler to many concurrent `getToken` calls would otherwise get a
 * listener per call (Node warns with `MaxListenersExceededWarning` past 10, and
 * `AbortSignal.any` adds one more per call); here each call gets a signal of its own, and
 * the caller's signal gets one listener that aborts them all, removed when the last call
 * settles.
 */
const groups = new WeakMap<SignalLike, Group>();

/** What {@link callSignal} returns. */
export interface CallSignal {
  /** This call's own signal: aborted by the caller's signal or by the time limit. */
  readonly signal: AbortSignal;
  /** Whether the time limit (not the caller) aborted it. */
  readonly timedOut: () => boolean;
  /** Detaches this call from the caller's signal and stops its time limit. Idempotent. */
  readonly dispose: () => void;
}

/**
 * A signal for one call that aborts when `callerSignal` does or after `timeoutMs`, adding
 * at most one listener to `callerSignal` for all the calls that share it.
 *
 * @example
 * ```ts
 * const call = callSignal(options.abortSignal, options.requestOptions?.timeout);
 * try { return await registry.get(key, { signal: call.signal }); } finally { call.dispose(); }
 * ```
 */
export function callSignal(
  callerSignal: SignalLike | undefined,
  timeoutMs: number | undefined,
): CallSignal {
  const controller = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let group: Group | undefined;
  if (callerSignal !== undefined) {
    if (callerSignal.aborted) {
      controller.abort(reasonOf(callerSignal));
    } else {
      group = groups.get(callerSignal);
      if (group === undefined) {
        const calls = new Set<AbortController>();
        const onAbort = (): void => {
          groups.delete(callerSignal);
          for (const call of calls) call.abort(reasonOf(callerSignal));
          calls.clear();
        };
        group = { calls, onAbort };
        groups.set(callerSignal, group);
        callerSignal.addEventListener("abort", onAbort, { once: true });
      }
      group.calls.add(controller);
    }
  }
  if (timeoutMs !== undefined && timeoutMs > 0 && !controller.signal.aborted) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`requestOptions.timeout (${timeoutMs} ms) elapsed`));
    }, timeoutMs);
    // The waiting caller holds the process (keep-alive.ts); the time limit itself must not.
    timer.unref();
  }
  let disposed = false;
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (group === undefined || callerSignal === undefined) return;
      group.calls.delete(controller);
      if (group.calls.size === 0 && groups.get(callerSignal) === group) {
        groups.delete(callerSignal);
        callerSignal.removeEventListener("abort", group.onAbort);
      }
    },
  };
}

function reasonOf(signal: SignalLike): unknown {
  return (signal as { reason?: unknown }).reason;
}
