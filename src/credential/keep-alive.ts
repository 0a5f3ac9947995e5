import { Observable, type MonoTypeOperatorFunction } from "rxjs";

/**
 * The process-lifetime rule, in one place.
 *
 * Background work never keeps a Node process alive: refresh timers, retry timers and request
 * time limits run on the unref'd scheduler, so a script that got its token exits at once.
 * But while someone awaits a token that is not there yet (a `getToken` caller, a `token$`
 * subscriber that has had no token yet, as with `firstValueFrom(token$)`), the process must
 * not exit under it: with every timer unref'd, a script whose only work is
 * `await credential.getToken(scope)` would end with code 0 and print nothing while a retry
 * after a `503` + `Retry-After: 1` was pending (the awaited promise never settles).
 *
 * So each such waiter holds the process keep-alive below until it settles: one ref'd timer
 * shared by all waiters of all credentials, created when the first waiter arrives and
 * cleared when the last one settles. The acquisition's own timers and sockets stay as they
 * are (unref'd); while the keep-alive is held the event loop runs, so they fire on time.
 */

// Captured at load, so fake timers installed later by a test (vi.useFakeTimers) neither
// replace nor run this timer: it is never meant to fire.
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;
/** The longest delay Node's timers take; the callback never runs in practice. */
const maxDelay = 2_147_483_647;

let holders = 0;
let timer: ReturnType<typeof setInterval> | undefined;

/**
 * Keeps the Node process alive until the returned release function is called (it is
 * idempotent). Holds are counted: one ref'd timer exists while any hold is unreleased.
 *
 * @returns the release function
 * @example
 * ```ts
 * const release = holdProcess();
 * try { return await slowThing(); } finally { release(); }
 * ```
 */
export function holdProcess(): () => void {
  holders += 1;
  if (holders === 1) timer = realSetInterval(() => undefined, maxDelay);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders -= 1;
    if (holders === 0 && timer !== undefined) {
      realClearInterval(timer);
      timer = undefined;
    }
  };
}

/**
 * `promise`, holding the process alive (see {@link holdProcess}) until it settles.
 *
 * @example
 * ```ts
 * return whileAwaited(registry.get(key));
 * ```
 */
export function whileAwaited<T>(promise: Promise<T>): Promise<T> {
  const release = holdProcess();
  return promise.then(
    (value) => {
      release();
      return value;
    },
    (error: unknown) => {
      release();
      throw error;
    },
  );
}

/**
 * Holds the process alive from subscription until the first notification (a token, the
 * error or completion) or unsubscription: a subscriber that has had no token yet is waiting
 * for one; once it has one, refreshes are background work.
 *
 * @example
 * ```ts
 * const token = await firstValueFrom(registry.stream(key).pipe(holdUntilFirstValue()));
 * ```
 */
export function holdUntilFirstValue<T>(): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      let release: (() => void) | undefined = holdProcess();
      const settle = (): void => {
        release?.();
        release = undefined;
      };
      const subscription = source.subscribe({
        next: (value) => {
          settle();
          subscriber.next(value);
        },
        error: (error: unknown) => {
          settle();
          subscriber.error(error);
        },
        complete: () => {
          settle();
          subscriber.complete();
        },
      });
      return () => {
        settle();
        subscription.unsubscribe();
      };
    });
}
