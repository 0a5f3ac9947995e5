import type { AccessToken } from "@azure/core-auth";
import { createClientLogger } from "@azure/logger";
import { Observable, ReplaySubject, firstValueFrom, share, type Subscription } from "rxjs";
import type { TokenStreamOptions } from "../credential/client-secret-credential.js";
import { validateScopes } from "../credential/validation.js";
import { CredentialUnavailableError, InvalidArgumentError } from "../errors/index.js";

/**
 * A node-redis `StreamingCredentialsProvider` fed by a credential's `token$`.
 *
 * node-redis (`@redis/client` 5 and later) calls `subscribe` once per connection, in the
 * connection's handshake: the first credentials go into `HELLO ... AUTH` (RESP3) or `AUTH`
 * (RESP2), and each later `onNext` makes that connection send `AUTH` again
 * (`RedisClient.reAuthenticate`). A cluster's node clients and `duplicate()`d pub/sub clients
 * inherit the provider, so all of them subscribe here.
 *
 * The types are declared here, structurally equal to node-redis's (which it exports only from
 * `@redis/client/dist/lib/authx`), so this module needs no `redis` types to compile.
 */

/** Credentials node-redis sends with `AUTH`. */
export interface RedisBasicAuth {
  username?: string;
  password?: string;
}

/** What node-redis passes to {@link RedisCredentialsProvider.subscribe}. */
export interface RedisCredentialsListener {
  onNext: (credentials: RedisBasicAuth) => void;
  onError: (error: Error) => void;
}

/** node-redis's `StreamingCredentialsProvider`, as {@link redisCredentials} returns it. */
export interface RedisCredentialsProvider {
  readonly type: "streaming-credentials-provider";
  subscribe: (
    listener: RedisCredentialsListener,
  ) => Promise<[RedisBasicAuth, { dispose: () => void }]>;
  onReAuthenticationError: (error: Error) => void;
}

/** The part of a credential {@link redisCredentials} uses: `ClientSecretCredential` has it. */
export interface TokenStreamCredential {
  token$(scopes: string | string[], options?: TokenStreamOptions): Observable<AccessToken>;
}

/** Options of {@link redisCredentials}. */
export interface RedisCredentialsOptions {
  /**
   * The Redis user: for Azure Cache for Redis and Azure Managed Redis, the object id (`oid`)
   * of the service principal, as its access policy assignment names it.
   */
  readonly username: string;
  /**
   * Scopes of the Redis token.
   * @default "https://redis.azure.com/.default"
   */
  readonly scopes?: string | readonly string[] | undefined;
  /**
   * Called with every re-authentication failure node-redis reports: a `CredentialsError` when
   * the server refused an `AUTH`, an `UnableToObtainNewCredentialsError` when no token could
   * be had, whose `cause` is the credential's typed error (an `AuthenticationError`, say).
   * @default a warning in the `rx-identity:redis` log
   */
  readonly onReAuthenticationError?: ((error: Error) => void) | undefined;
  /**
   * Backoff between attempts to get a token again after the credential's stream failed
   * (its own retries exhausted): exponential from `minDelayMs` to `maxDelayMs`, randomised.
   * @default { minDelayMs: 1_000, maxDelayMs: 30_000 }
   */
  readonly retry?:
    | { readonly minDelayMs?: number | undefined; readonly maxDelayMs?: number | undefined }
    | undefined;
}

/** The scope of Azure Cache for Redis and Azure Managed Redis. */
export const REDIS_SCOPE = "https://redis.azure.com/.default";

const logger = createClientLogger("rx-identity:redis");

type Update =
  | { readonly kind: "token"; readonly token: AccessToken }
  | { readonly kind: "error"; readonly error: unknown };

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function delayOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(
      `redisCredentials: \`retry.${name}\` must be a non-negative number of milliseconds; got ${String(value)}.`,
    );
  }
  return value;
}

/**
 * A node-redis credentials provider that authenticates with tokens from `credential`:
 * `createClient({ url, credentialsProvider: redisCredentials(credential, { username }) })`.
 *
 * - The first credentials of each connection are the current token (one shared, single-flight
 *   request if there is none yet).
 * - Every refreshed token of `token$` (well before the old one expires: at half-life for an
 *   hour-long token) makes every connection send `AUTH` again, so Azure never closes one for
 *   an expired token. All connections share one `token$` subscription.
 * - When the credential cannot get a token (its own retries exhausted), every connection's
 *   `onReAuthenticationError` is called with the typed error as `cause`, and a token is asked
 *   for again with backoff (p-retry) until one comes; the connections then re-authenticate
 *   (or, if Azure closed them meanwhile, reconnect with it).
 * - A connection's subscription ends when it disconnects (`close`, `destroy`); the shared
 *   `token$` subscription ends with the last one.
 *
 * Pub/sub: with RESP3 (`RESP: 3`) a subscribed connection re-authenticates like any other.
 * With RESP2, node-redis does not send `AUTH` on a subscribed connection (Redis refuses it
 * there), so Azure closes it when its token expires and node-redis reconnects and
 * re-subscribes: use `RESP: 3` for long-lived subscribers.
 *
 * @param credential - a `ClientSecretCredential` (anything with `token$`)
 * @param options - `username` (the service principal's object id), `scopes`, error callback
 * @throws {@link InvalidArgumentError} at once for a missing credential, username or bad scopes
 * @example
 * ```ts
 * import { createClient } from "redis";
 * const client = createClient({
 *   url: "rediss://my-cache.redis.cache.windows.net:6380",
 *   credentialsProvider: redisCredentials(credential, { username: servicePrincipalObjectId }),
 * });
 * await client.connect();
 * ```
 */
export function redisCredentials(
  credential: TokenStreamCredential,
  options: RedisCredentialsOptions,
): RedisCredentialsProvider {
  if (
    typeof credential !== "object" ||
    credential === null ||
    typeof (credential as Partial<TokenStreamCredential>).token$ !== "function"
  ) {
    throw new InvalidArgumentError(
      "redisCredentials: `credential` must have token$ (a ClientSecretCredential).",
    );
  }
  const username: unknown = (options as Partial<RedisCredentialsOptions> | undefined)?.username;
  if (typeof username !== "string" || username.trim() === "") {
    throw new InvalidArgumentError(
      "redisCredentials: `username` must be the object id of the service principal (the Redis user its access policy names).",
    );
  }
  const scopes = [...validateScopes(options.scopes ?? REDIS_SCOPE)];
  const minDelayMs = delayOption("minDelayMs", options.retry?.minDelayMs, 1_000);
  const maxDelayMs = Math.max(
    minDelayMs,
    delayOption("maxDelayMs", options.retry?.maxDelayMs, 30_000),
  );
  const report =
    options.onReAuthenticationError ??
    ((error: Error) =>
      logger.warning(
        `rx-identity Redis re-authentication failed: ${error.message}${error.cause instanceof Error ? ` (${error.cause.name}: ${error.cause.message})` : ""}`,
      ));
  /** The credential's last failure, attached as `cause` to node-redis's error about it. */
  let lastFailure: unknown;

  // One subscription to token$ for every connection: the last update is replayed to a new
  // connection, so it starts with the current token (or fails at once during an outage).
  const updates$ = new Observable<Update>((subscriber) => {
    const stop = new AbortController();
    let current: Subscription | undefined;
    const follow = (): void => {
      current = credential.token$(scopes).subscribe({
        next: (token) => subscriber.next({ kind: "token", token }),
        error: (error: unknown) => {
          subscriber.next({ kind: "error", error });
          void recover();
        },
        complete: () => subscriber.complete(),
      });
    };
    // The engine retries transient failures itself and errors only when no usable token can
    // be had; from then on nobody inside it asks again. A Redis connection outlives that, so
    // ask again here, in real time, with backoff: a Promise-level retry, which is p-retry's
    // job (loaded on first need: it is ESM-only, and a dynamic import works from the CJS
    // build too).
    const recover = async (): Promise<void> => {
      try {
        const { default: pRetry } = await import("p-retry");
        await pRetry(() => firstValueFrom(credential.token$(scopes)), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: minDelayMs,
          maxTimeout: maxDelayMs,
          randomize: true,
          signal: stop.signal,
          // The Redis sockets keep the process alive while they are open; this must not.
          unref: true,
          // A closed credential will not heal; anything else may (an outage, a secret rotated).
          shouldRetry: ({ error }) =>
            !(error instanceof CredentialUnavailableError && /closed/i.test(error.message)),
          onFailedAttempt: ({ error }) => subscriber.next({ kind: "error", error }),
        });
      } catch (error) {
        if (!stop.signal.aborted) subscriber.error(error);
        return;
      }
      if (!stop.signal.aborted) follow();
    };
    follow();
    return () => {
      stop.abort();
      current?.unsubscribe();
    };
  }).pipe(
    share({
      connector: () => new ReplaySubject<Update>(1),
      resetOnError: true,
      resetOnComplete: true,
      resetOnRefCountZero: true,
    }),
  );

  return {
    type: "streaming-credentials-provider",
    subscribe(listener) {
      return new Promise((resolve, reject) => {
        let started = false;
        let sentPassword: string | undefined;
        // Filled after subscribe returns: a replayed update may dispose before that.
        const handle: { subscription?: Subscription; disposed?: true } = {};
        const disposable = {
          dispose: () => {
            handle.disposed = true;
            handle.subscription?.unsubscribe();
          },
        };
        const fail = (error: unknown): void => {
          lastFailure = error;
          if (!started) {
            started = true;
            disposable.dispose();
            reject(asError(error));
          } else {
            listener.onError(asError(error));
          }
        };
        const subscription = updates$.subscribe({
          next: (update) => {
            if (update.kind === "error") return fail(update.error);
            // A replayed token that expired meanwhile is no credential: wait for the next.
            if (update.token.expiresOnTimestamp <= Date.now()) return;
            // token$ emits the current token again after a recovery: one AUTH per token.
            if (update.token.token === sentPassword) return;
            sentPassword = update.token.token;
            const credentials = { username, password: update.token.token };
            if (!started) {
              started = true;
              resolve([credentials, disposable]);
            } else {
              listener.onNext(credentials);
            }
          },
          error: fail,
          complete: () =>
            fail(
              new CredentialUnavailableError(
                "redisCredentials: the credential was closed; create the Redis client with an open one.",
              ),
            ),
        });
        handle.subscription = subscription;
        if (handle.disposed) subscription.unsubscribe();
      });
    },
    onReAuthenticationError(error) {
      // node-redis passes only the message of what we reported: give the typed error back.
      if (
        error.name === "UnableToObtainNewCredentialsError" &&
        error.cause === undefined &&
        lastFailure !== undefined
      ) {
        Object.defineProperty(error, "cause", {
          value: lastFailure,
          configurable: true,
          writable: true,
          enumerable: false,
        });
      }
      report(error);
    },
  };
}
