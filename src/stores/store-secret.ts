import { isObservable, type Observable, type Subscription } from "rxjs";
import { createEntryCipher, type EntryCipher } from "./entry-cipher.js";
import { TokenStoreUnavailableError } from "./errors.js";
import type { StoreLogger } from "./token-store.js";

/**
 * The client secret a store seals with: a string, or an `Observable<string>` of the current
 * secret (the same one the credential is given, such as `secretFromFile(path)`). Each new
 * value rotates the store's {@link EntryCipher}: new writes are sealed under it, entries
 * sealed under earlier secrets stay readable while they can be valid (derived keys only).
 */

/** What a store takes as `clientSecret`. */
export type StoreSecret = string | Observable<string>;

/**
 * How long a store waits for the first value of an Observable secret before a command
 * fails with {@link TokenStoreUnavailableError} (the caller then acquires on its own).
 */
export const STORE_SECRET_WAIT_MS = 5_000;

/** The cipher of a store, as its secret arrives and rotates. */
export interface StoreCipher {
  /** The cipher once the first secret is there (at once for a string). */
  ready(): Promise<EntryCipher>;
  /** Stops following the secret. */
  close(): void;
}

/**
 * Follows `secret` for a store.
 *
 * @example
 * ```ts
 * const ciphers = followStoreSecret(options.clientSecret, { now, logger, name: "file token cache" });
 * const sealed = (await ciphers.ready()).seal(key, entry);
 * ```
 */
export function followStoreSecret(
  secret: StoreSecret,
  options: {
    readonly now: () => number;
    readonly logger: StoreLogger;
    /** The store's name in log lines and errors. */
    readonly name: string;
  },
): StoreCipher {
  if (!isObservable(secret)) {
    // A bad string throws here, when the store is created.
    const fixed = Promise.resolve(createEntryCipher(secret, { now: options.now }));
    return { ready: () => fixed, close: () => undefined };
  }
  let cipher: EntryCipher | undefined;
  let arrived: (cipher: EntryCipher) => void = () => undefined;
  const first = new Promise<EntryCipher>((resolve) => {
    arrived = resolve;
  });
  const subscription: Subscription = secret.subscribe({
    next: (value: unknown) => {
      if (typeof value !== "string" || value.length === 0) {
        options.logger.warning(
          `rx-identity ${options.name}: the clientSecret Observable emitted no secret (${typeof value === "string" ? "an empty string" : typeof value}); ignored.`,
        );
        return;
      }
      if (cipher === undefined) {
        cipher = createEntryCipher(value, { now: options.now });
        arrived(cipher);
        return;
      }
      const before = cipher.keyIds[0];
      cipher.rotate(value);
      if (cipher.keyIds[0] !== before) {
        options.logger.info(
          `rx-identity ${options.name}: client secret rotated; new entries are sealed under key ${cipher.keyIds[0]}, entries under ${cipher.keyIds.slice(1).join(", ") || "no earlier key"} stay readable while they are valid.`,
        );
      }
    },
    error: (error: unknown) =>
      options.logger.warning(
        `rx-identity ${options.name}: the clientSecret Observable failed (${error instanceof Error ? error.message : String(error)}); ${cipher === undefined ? "nothing is stored or read" : "the last secret stays in use"}.`,
      ),
  });

  const ready = (): Promise<EntryCipher> => {
    if (cipher !== undefined) return Promise.resolve(cipher);
    return new Promise<EntryCipher>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new TokenStoreUnavailableError(
              `The ${options.name} has had no client secret from its clientSecret Observable for ${STORE_SECRET_WAIT_MS} ms; acquire the token without it.`,
            ),
          ),
        STORE_SECRET_WAIT_MS,
      );
      timer.unref();
      void first.then((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  };

  return { ready, close: () => subscription.unsubscribe() };
}
