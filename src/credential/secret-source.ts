import { createHash } from "node:crypto";
import { isObservable, type Observable, type SchedulerLike, type Subscription } from "rxjs";
import { AbortError, CredentialUnavailableError } from "../errors/index.js";
import { clampDelay } from "../operators/clamp-delay.js";
import { logger } from "./logger.js";

/**
 * The client secret as the credential holds it: a fixed string, or the latest value of an
 * `Observable<string>` (a mounted secret file, a Key Vault poller). Each value replaces the
 * one before; the first acquisition waits for a first value, for a bounded time. Only the
 * current secret string is kept: a replaced one is dropped at once (in-flight requests hold
 * theirs until they settle). Log lines name a secret by its {@link secretFingerprint} only.
 */

/**
 * How long the first acquisition waits for an `Observable` secret's first value, in ms.
 */
export const DEFAULT_SECRET_TIMEOUT_MS = 30_000;

/**
 * A short, stable name of a secret for log lines: the first 8 hex digits of a SHA-256 of it
 * (under a fixed label), so two log lines can say "the same secret" or "another one" without
 * showing it. 32 bits of a hash of a high-entropy secret tell an attacker nothing useful.
 *
 * @example
 * ```ts
 * secretFingerprint("s3cret"); // "4f1c9a0e" (for example)
 * ```
 */
export function secretFingerprint(secret: string): string {
  return createHash("sha256")
    .update("rx-identity/secret-fingerprint\0")
    .update(secret, "utf8")
    .digest("hex")
    .slice(0, 8);
}

/**
 * One secret as the source handed it out. The string is behind `reveal()` (a private field),
 * so `util.inspect` or `JSON.stringify` of a snapshot shows its version and fingerprint only.
 */
export class SecretSnapshot {
  readonly #secret: string;
  /** 1 for the first secret, then one more per rotation. */
  readonly version: number;
  /** {@link secretFingerprint} of the secret. */
  readonly fingerprint: string;

  constructor(secret: string, version: number) {
    this.#secret = secret;
    this.version = version;
    this.fingerprint = secretFingerprint(secret);
  }

  /** The secret itself, for MSAL's configuration and the store keys only. */
  reveal(): string {
    return this.#secret;
  }

  toJSON(): { version: number; fingerprint: string } {
    return { version: this.version, fingerprint: this.fingerprint };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `SecretSnapshot { version: ${this.version}, fingerprint: '${this.fingerprint}' }`;
  }
}

/** Options of {@link createSecretSource}. */
export interface SecretSourceOptions {
  /** The clock of the first-secret time limit. */
  readonly scheduler: SchedulerLike;
  /** @default {@link DEFAULT_SECRET_TIMEOUT_MS} */
  readonly timeoutMs?: number | undefined;
  /** Told of every new secret after the first (the credential's `secret-rotated` event). */
  readonly onRotate?: ((next: SecretSnapshot, previous: SecretSnapshot) => void) | undefined;
}

/** The credential's current client secret. */
export interface SecretSource {
  /** The current secret, or `undefined` before the first one arrived. */
  current(): SecretSnapshot | undefined;
  /**
   * The current secret; before the first one, waits for it up to the time limit. Rejects
   * with {@link CredentialUnavailableError} when none comes in time or the Observable failed
   * before its first value, with {@link AbortError} when `signal` aborts.
   */
  get(signal: AbortSignal): Promise<SecretSnapshot>;
  /** Every value of the Observable, this one's first included (for the stores). */
  readonly values$: Observable<string> | undefined;
  /** Stops following the Observable. */
  close(): void;
}

function describeReason(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * The secret source of one credential. A string is validated by the caller and is the only
 * secret for good; an Observable is subscribed to at once, each non-empty string value that
 * differs from the current one is a rotation (told to `onRotate`: the credential makes it a
 * `secret-rotated` event, whose log line names both fingerprints), anything else is ignored
 * with a warning. An error after a first value keeps the last secret in use.
 *
 * @example
 * ```ts
 * const source = createSecretSource(secretFromFile("/var/run/secrets/app/client-secret"), { scheduler });
 * const snapshot = await source.get(signal);
 * ```
 */
export function createSecretSource(
  clientSecret: string | Observable<string>,
  options: SecretSourceOptions,
): SecretSource {
  if (!isObservable(clientSecret)) {
    const only = new SecretSnapshot(clientSecret, 1);
    return {
      current: () => only,
      get: () => Promise.resolve(only),
      values$: undefined,
      close: () => undefined,
    };
  }
  const { scheduler } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SECRET_TIMEOUT_MS;
  let current: SecretSnapshot | undefined;
  let failure: CredentialUnavailableError | undefined;
  let waiters: { resolve: (s: SecretSnapshot) => void; reject: (e: Error) => void }[] = [];

  const settleWaiters = (outcome: SecretSnapshot | CredentialUnavailableError): void => {
    const pending = waiters;
    waiters = [];
    for (const waiter of pending) {
      if (outcome instanceof SecretSnapshot) waiter.resolve(outcome);
      else waiter.reject(outcome);
    }
  };

  const subscription: Subscription = clientSecret.subscribe({
    next: (value: unknown) => {
      if (typeof value !== "string" || value.length === 0) {
        logger.warning(
          `ClientSecretCredential: the clientSecret Observable emitted ${typeof value === "string" ? "an empty string" : `a ${typeof value}`}, not a secret; ${current === undefined ? "still waiting for a first secret" : `secret ${current.fingerprint} stays in use`}.`,
        );
        return;
      }
      const previous = current;
      if (previous !== undefined && previous.reveal() === value) return;
      const next = new SecretSnapshot(value, (previous?.version ?? 0) + 1);
      current = next;
      if (previous === undefined) {
        logger.info(`ClientSecretCredential: client secret ${next.fingerprint} received.`);
        settleWaiters(next);
        return;
      }
      // No log line here: the credential's `secret-rotated` event has it (one source).
      options.onRotate?.(next, previous);
    },
    error: (error: unknown) => {
      if (current !== undefined) {
        logger.warning(
          `ClientSecretCredential: the clientSecret Observable failed (${describeReason(error)}); secret ${current.fingerprint} stays in use, and no later rotation is seen.`,
        );
        return;
      }
      failure = new CredentialUnavailableError(
        `ClientSecretCredential: the clientSecret Observable failed before its first secret (${describeReason(error)}): fix what it reads from, or pass the secret as a string.`,
        { cause: error },
      );
      settleWaiters(failure);
    },
    complete: () => {
      if (current !== undefined) return;
      failure = new CredentialUnavailableError(
        "ClientSecretCredential: the clientSecret Observable completed without a secret: it must emit the current client secret (a non-empty string).",
      );
      settleWaiters(failure);
    },
  });

  const get = (signal: AbortSignal): Promise<SecretSnapshot> => {
    if (current !== undefined) return Promise.resolve(current);
    if (failure !== undefined) return Promise.reject(failure);
    if (signal.aborted) {
      return Promise.reject(new AbortError("The token request was aborted before it started."));
    }
    return new Promise<SecretSnapshot>((resolve, reject) => {
      const done = (): void => {
        timer.unsubscribe();
        signal.removeEventListener("abort", onAbort);
        waiters = waiters.filter((waiter) => waiter !== entry);
      };
      const entry = {
        resolve: (snapshot: SecretSnapshot) => {
          done();
          resolve(snapshot);
        },
        reject: (error: Error) => {
          done();
          reject(error);
        },
      };
      const onAbort = (): void =>
        entry.reject(
          new AbortError("The token request was aborted while waiting for a client secret.", {
            cause: signal.reason,
          }),
        );
      const timer = scheduler.schedule(
        () =>
          entry.reject(
            new CredentialUnavailableError(
              `ClientSecretCredential: no client secret arrived from the clientSecret Observable within ${timeoutMs} ms: check what it reads from (a secret file must exist and not be empty), or raise \`secretTimeoutMs\`.`,
            ),
          ),
        clampDelay(timeoutMs),
      );
      signal.addEventListener("abort", onAbort, { once: true });
      waiters.push(entry);
    });
  };

  return {
    current: () => current,
    get,
    values$: clientSecret,
    close: () => {
      subscription.unsubscribe();
      settleWaiters(
        new CredentialUnavailableError("ClientSecretCredential: the credential is closed."),
      );
    },
  };
}
