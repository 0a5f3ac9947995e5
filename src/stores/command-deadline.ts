/**
 * How long the Redis token store waits for Redis: a deadline per command that counts only
 * time in which this process could have read the reply.
 */

/** Resolves when `promise` settles or after `ms`, whichever is first (an unref'd timer). */
export function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

// node-redis's own `timeout` command option stops counting once a command is written
// ("Timeout only works while the command is still pending to be sent", redis/node-redis
// PR #3008), so a frozen or overloaded Redis would hold the caller forever: race each
// command against our own deadline. A late reply is simply dropped.
//
// The deadline rejects from a `setImmediate` queued when its timer fires, not from the timer
// itself. Node runs due timers before it reads sockets in each turn of the event loop, so in
// a busy process (every timer late by more than the deadline: a fleet process starting 100
// token streams on a loaded machine) a bare timer would beat a reply already waiting in the
// socket, report Redis unavailable, and send every key to Entra ID on its own, which loads
// the machine further. `setImmediate` runs after this turn's socket reads, so a reply that
// has arrived wins, and only a Redis that truly did not answer in time is reported.
// Likewise, time this process spent blocked (the timer firing late) is given back once more,
// up to 4 × `commandTimeoutMs` in all: the command gets `commandTimeoutMs` of time in which
// this process could have read a reply, whatever else kept it busy.
export function commandDeadline(
  what: string,
  commandTimeoutMs: number,
): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const started = performance.now();
  const promise = new Promise<never>((_, reject) => {
    const arm = (delay: number): void => {
      const armedAt = performance.now();
      timer = setTimeout(() => {
        const now = performance.now();
        const late = now - armedAt - delay;
        const left = 4 * commandTimeoutMs - (now - started);
        if (late > commandTimeoutMs / 10 && left > 0) {
          arm(Math.min(late, left));
          return;
        }
        immediate = setImmediate(() =>
          reject(new Error(`no reply to ${what} within ${commandTimeoutMs} ms`)),
        );
      }, delay);
      timer.unref();
    };
    arm(commandTimeoutMs);
  });
  return {
    promise,
    clear: () => {
      clearTimeout(timer);
      if (immediate !== undefined) clearImmediate(immediate);
    },
  };
}
