import { from, Observable, Subscription, type ObservableInput, type OperatorFunction } from "rxjs";

/**
 * Make-before-break: for each source value opens a new connection with `open(value)` and
 * keeps the previous connection until the new one emits its first value (is ready), then
 * closes the previous one. A newer value that arrives before a candidate is ready replaces
 * the candidate. Emits the values of every live connection; completes when the source and
 * the live connection have completed; errors of either go downstream, and so does an error
 * `open` throws synchronously (as with `switchMap`'s projection).
 *
 * This is how a websocket presents each new token before the old one expires: the old
 * socket keeps working until the one opened with the fresh token is up.
 *
 * @example
 * ```ts
 * credential.token$(scope).pipe(
 *   rotateOnNewValue((t) => connectWebSocket(url, t.token)), // emits messages
 * );
 * ```
 */
export function rotateOnNewValue<T, R>(
  open: (value: T) => ObservableInput<R>,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let live: Subscription | undefined;
      let candidate: Subscription | undefined;
      let sourceDone = false;
      const completeIfDone = (): void => {
        if (sourceDone && live === undefined && candidate === undefined) subscriber.complete();
      };
      const sourceSubscription = source.subscribe({
        next: (value) => {
          candidate?.unsubscribe();
          const connection = new Subscription();
          candidate = connection;
          let ready = false;
          // `open` and `from` run inside the source's `next`: a synchronous throw there (a
          // `new WebSocket(badUrl)`, a projection returning `undefined`) would escape to
          // rxjs's `reportUnhandledError` and crash the process. Deliver it downstream, as
          // rxjs's own `switchMap` does with a throwing projection (issue #18).
          let connection$: Observable<R>;
          try {
            connection$ = from(open(value));
          } catch (error) {
            candidate = undefined;
            subscriber.error(error);
            return;
          }
          connection.add(
            connection$.subscribe({
              next: (result) => {
                if (!ready) {
                  ready = true;
                  const previous = live;
                  live = connection;
                  if (candidate === connection) candidate = undefined;
                  previous?.unsubscribe();
                }
                subscriber.next(result);
              },
              error: (error: unknown) => subscriber.error(error),
              complete: () => {
                if (live === connection) live = undefined;
                if (candidate === connection) candidate = undefined;
                completeIfDone();
              },
            }),
          );
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          completeIfDone();
        },
      });
      return () => {
        sourceSubscription.unsubscribe();
        candidate?.unsubscribe();
        live?.unsubscribe();
      };
    });
}
