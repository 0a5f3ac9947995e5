import { randomUUID } from "node:crypto";
import { Observable, Subject, filter, share } from "rxjs";
import { backoffDelay } from "../operators/backoff-delay.js";
import { describeOpenFailure, type EntryCipher } from "./entry-cipher.js";
import { TokenStoreUnavailableError } from "./errors.js";
import {
  DELETE_AND_PUBLISH,
  GET_WITH_TTL,
  RELEASE_IF_HOLDER,
  SET_AND_PUBLISH,
  SKEW_TOLERANCE_MS,
  isUpdateMessage,
  loadRedis,
  reanchored,
  type RedisClient,
  type UpdateMessage,
} from "./redis-protocol.js";
import { defaultStoreLogger, shortKey } from "./logger.js";
import type { RedisTokenStoreOptions } from "./redis-store-options.js";
import { STORE_VERSION } from "./store-key.js";
import { followStoreSecret } from "./store-secret.js";
import type { TokenLease, TokenStore, TokenStoreEntry, TokenStoreUpdate } from "./token-store.js";

export type { RedisTokenStoreOptions };

/**
 * The fleet store: many processes sharing one service principal share its tokens through
 * Redis, so a fleet makes one token request per key per refresh instead of one per process.
 *
 * - tokens: `<prefix>:v1:token:<store key>`, sealed by {@link createEntryCipher}, with `PX`
 *   expiry at the token's expiry, so Redis drops them by itself; a write never replaces a
 *   token that lives longer, and a read gives the remaining life Redis counts (`PTTL`), so a
 *   reader whose clock lags the writer's never takes a token for longer-lived than it is;
 * - leases: `<prefix>:v1:lease:<store key>`, `SET … NX PX <ttl>` with a random holder token,
 *   released by a compare-and-delete script (the single-instance pattern of
 *   https://redis.io/docs/latest/develop/use/patterns/distributed-locks/), so the refresher
 *   that dies holds others back at most `ttl`; a release is published on the updates
 *   channel, so the processes waiting for that holder look again at once;
 * - updates: every write is published, atomically with the `SET` (one Lua script), on
 *   `<prefix>:v1:updates:<credential id>`, a channel per credential, so every process hears
 *   of a new token at once. The message carries the sealed value: no `GET` needed, and a
 *   process without the secret cannot forge one.
 *
 * Redis is an optimisation, never a dependency of getting a token: every command has a
 * bounded timeout, commands are not queued while disconnected (`disableOfflineQueue`), and
 * any failure rejects with {@link TokenStoreUnavailableError} so the caller acquires on its
 * own. The client reconnects with capped backoff and the store works again once Redis does.
 *
 * The `redis` package is an optional peer dependency, loaded only by
 * {@link createRedisTokenStore}, so users without Redis never load it.
 */

/**
 * A {@link TokenStore} on Redis, with `watch` and `lease`, plus whether Redis is reachable.
 *
 * @example
 * ```ts
 * if (!store.available) logger.info("acquiring without the fleet cache");
 * ```
 */
export interface RedisTokenStore extends TokenStore {
  /** Whether the last command or connection event says Redis is reachable. */
  readonly available: boolean;
  watch(key?: string): Observable<TokenStoreUpdate>;
  lease(key: string, ttlMs: number): Promise<TokenLease | null>;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `Expected \`${name}\` to be a positive number of milliseconds; got ${value}.`,
    );
  }
  return value;
}

/** Resolves when `promise` settles or after `ms`, whichever is first (an unref'd timer). */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
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

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Connects to Redis and returns the fleet store. Waits up to `connectTimeoutMs` for the
 * first connection; if Redis is not there yet, the store is returned anyway, reports
 * itself unavailable, and keeps reconnecting in the background. `close()` it when done: the
 * connection keeps the process alive.
 *
 * @example
 * ```ts
 * const store = await createRedisTokenStore({
 *   url: process.env.REDIS_URL,
 *   clientSecret,
 *   credentialId: credentialIdOf({ authorityHost, clientId }),
 * });
 * const lease = await store.lease(key, 30_000); // null: another process refreshes `key`
 * ```
 */
export async function createRedisTokenStore(
  options: RedisTokenStoreOptions,
): Promise<RedisTokenStore> {
  const commandTimeoutMs = positive("commandTimeoutMs", options.commandTimeoutMs, 500);
  const connectTimeoutMs = positive("connectTimeoutMs", options.connectTimeoutMs, 1_000);
  const baseDelayMs = positive("reconnect.baseDelayMs", options.reconnect?.baseDelayMs, 50);
  const maxDelayMs = positive("reconnect.maxDelayMs", options.reconnect?.maxDelayMs, 2_000);
  if (options.credentialId.length === 0) {
    throw new TypeError(
      "Expected `credentialId` to be credentialIdOf({ authorityHost, clientId }).",
    );
  }
  const logger = options.logger ?? defaultStoreLogger;
  const now = options.now ?? Date.now;
  const ciphers = followStoreSecret(options.clientSecret, {
    now,
    logger,
    name: "Redis token store",
  });
  // Opening needs the cipher synchronously (update messages): the first secret arrives
  // before the first command that could return an entry (every command awaits it).
  let cipher: EntryCipher | undefined;
  const cipherReady = (): Promise<EntryCipher> => ciphers.ready().then((ready) => (cipher = ready));
  void cipherReady().catch(() => undefined);
  const random = options.random ?? Math.random;
  const prefix = `${options.keyPrefix ?? "rx-identity"}:v${STORE_VERSION}`;
  const channel = `${prefix}:updates:${options.credentialId}`;
  const tokenKey = (key: string): string => `${prefix}:token:${key}`;
  const leaseKey = (key: string): string => `${prefix}:lease:${key}`;

  const { createClient } = await loadRedis();
  const client: RedisClient = createClient({
    url: options.url ?? "redis://127.0.0.1:6379",
    ...(options.credentials === undefined ? {} : { credentialsProvider: options.credentials }),
    // Fail at once while disconnected instead of queueing: the caller has a better plan.
    disableOfflineQueue: true,
    // Bounds what piles up behind a frozen Redis; beyond it commands fail at once.
    commandsQueueMaxLength: 1_000,
    commandOptions: { timeout: commandTimeoutMs },
    socket: {
      connectTimeout: connectTimeoutMs,
      // The library's one backoff formula, as the engine and `retryWithBackoff` use it.
      reconnectStrategy: (retries: number) =>
        Math.round(
          backoffDelay({ attempt: retries, baseMs: baseDelayMs, capMs: maxDelayMs, random }),
        ),
    },
  });

  let available = false;
  let everUp = false;
  let closed = false;
  /** Settles on the first `ready`: commands sent while the first connection is still being made wait for it. */
  let firstReady!: () => void;
  const firstConnection = new Promise<void>((resolve) => (firstReady = resolve));
  const markDown = (reason: string): void => {
    if (available) {
      logger.warning(
        `rx-identity Redis token store unavailable (${reason}); processes acquire tokens on their own until it returns.`,
      );
    }
    available = false;
  };
  // node-redis emits "error" for every failed (re)connect; an unhandled "error" event
  // would crash the process.
  client.on("error", (error: unknown) => markDown(describe(error)));
  const markUp = (): void => {
    if (everUp && !available) logger.info("rx-identity Redis token store available again.");
    everUp = true;
    available = true;
  };
  client.on("ready", () => {
    firstReady();
    markUp();
  });

  const connecting = client.connect().catch((error: unknown) => {
    if (!closed)
      logger.warning(`rx-identity Redis token store gave up connecting: ${describe(error)}`);
  });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, connectTimeoutMs);
    timer.unref();
    void connecting.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (!available) {
    logger.warning(
      `rx-identity Redis token store not connected after ${connectTimeoutMs} ms; processes acquire tokens on their own until it is.`,
    );
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
  function deadline(what: string): { promise: Promise<never>; clear: () => void } {
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

  async function run<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (closed) throw new Error("The token store is closed; create a new store to keep using it.");
    const limit = deadline(what);
    try {
      // A process that asks for tokens as soon as it starts (its store returned while still
      // connecting, after `connectTimeoutMs`) waits for the first connection within the same
      // deadline, rather than failing at once and acquiring every key on its own. Later
      // outages still fail fast (`disableOfflineQueue`).
      if (!everUp) await Promise.race([firstConnection, limit.promise]);
      const result = await Promise.race([command(), limit.promise]);
      // A command that timed out marked the store down while the connection stayed up (no
      // `ready` follows): the first reply after it is what says Redis is back (issue #18).
      markUp();
      return result;
    } catch (error) {
      markDown(describe(error));
      throw new TokenStoreUnavailableError(
        `The Redis token store could not ${what} (${describe(error)}); acquire the token without it.`,
        { cause: error },
      );
    } finally {
      limit.clear();
    }
  }

  async function readyOrUnavailable(): Promise<EntryCipher> {
    try {
      return await cipherReady();
    } catch (error) {
      markDown(describe(error));
      throw error;
    }
  }

  /**
   * Opens a sealed entry. With `leftMs`, its remaining life as Redis (or the writer, at
   * publication) counts it, the entry's times are moved onto this process's clock: a writer
   * whose clock runs ahead of ours by more than the forced window would otherwise have us
   * serve its token after it expired.
   */
  function open(
    key: string,
    sealed: string,
    where: string,
    leftMs?: number,
  ): TokenStoreEntry | undefined {
    if (cipher === undefined) return undefined;
    const opened = cipher.open(key, sealed);
    if (!opened.ok) {
      logger.warning(
        `rx-identity Redis token store: ${where} for ${shortKey(key)} ignored (${describeOpenFailure(opened.reason)}).`,
      );
      return undefined;
    }
    const at = now();
    // Within a second of our clock (the same clock, a round trip late) the entry is kept as
    // written; a larger difference is clock skew, far beyond a reply's latency.
    const entry =
      leftMs !== undefined &&
      Number.isFinite(leftMs) &&
      leftMs > 0 &&
      Math.abs(at + leftMs - opened.entry.expiresOnTimestamp) > SKEW_TOLERANCE_MS
        ? reanchored(opened.entry, at + leftMs)
        : opened.entry;
    return entry.expiresOnTimestamp > at ? entry : undefined;
  }

  // One SUBSCRIBE per store, shared by every watcher, dropped when the last one leaves.
  let subscriber: RedisClient | undefined;
  const updates = new Subject<TokenStoreUpdate>();
  const onMessage = (message: string): void => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      parsed = undefined;
    }
    if (!isUpdateMessage(parsed)) {
      logger.warning("rx-identity Redis token store: a malformed update message was ignored.");
      return;
    }
    if (parsed.v === null) {
      updates.next(
        parsed.r === 1
          ? { key: parsed.k, entry: undefined, released: true }
          : { key: parsed.k, entry: undefined },
      );
      return;
    }
    const entry = open(parsed.k, parsed.v, "an update", parsed.t);
    if (entry === undefined) return;
    updates.next({ key: parsed.k, entry });
  };
  /**
   * Settles once the current watch's SUBSCRIBE is active (or failed): `read` waits for it, so
   * a caller that subscribes to `watch` and then reads misses no write made after the read.
   */
  let subscribed: Promise<void> | undefined;
  const allUpdates$ = new Observable<TokenStoreUpdate>((observer) => {
    if (closed) {
      observer.complete();
      return undefined;
    }
    // The subscriber queues SUBSCRIBE while offline and node-redis re-subscribes after a
    // reconnect; updates published while it was away are lost, which is why the engine
    // still reads the store before acquiring.
    const sub = client.duplicate({ disableOfflineQueue: false, commandOptions: {} });
    subscriber = sub;
    sub.on("error", () => undefined); // the command client already reports outages
    const subscription = updates.subscribe(observer);
    const active = sub
      .connect()
      .then(() => sub.subscribe(channel, onMessage))
      .catch(() => undefined);
    subscribed = active;
    void active.then(() => {
      if (subscribed === active) subscribed = undefined;
    });
    return () => {
      subscription.unsubscribe();
      if (subscribed === active) subscribed = undefined;
      if (subscriber === sub) subscriber = undefined;
      if (sub.isReady) void sub.close().catch(() => sub.destroy());
      else if (sub.isOpen) sub.destroy();
    };
  }).pipe(share({ resetOnRefCountZero: true, resetOnComplete: true, resetOnError: true }));

  const store: RedisTokenStore = {
    get available() {
      return available;
    },
    async read(key) {
      await readyOrUnavailable();
      // A watch still subscribing (its connection is new) would miss a write published right
      // after this read: the read waits for the SUBSCRIBE, within the command deadline. A
      // SUBSCRIBE slower than that is not waited for; the engine's poll covers the gap.
      const subscribing = subscribed;
      if (subscribing !== undefined) await settledWithin(subscribing, commandTimeoutMs);
      const reply = await run("read a token", () =>
        client.sendCommand<[string | null, number]>(["EVAL", GET_WITH_TTL, "1", tokenKey(key)]),
      );
      const [sealed, left] = Array.isArray(reply) ? reply : [null, -2];
      return typeof sealed === "string"
        ? open(key, sealed, "the stored entry", Number(left))
        : undefined;
    },
    async write(key, entry) {
      const ttl = Math.ceil(entry.expiresOnTimestamp - now());
      if (ttl <= 0) return store.delete(key);
      const sealed = (await readyOrUnavailable()).seal(key, entry);
      const message = JSON.stringify({ k: key, v: sealed, t: ttl } satisfies UpdateMessage);
      await run("write a token", () =>
        client.sendCommand([
          "EVAL",
          SET_AND_PUBLISH,
          "1",
          tokenKey(key),
          sealed,
          String(ttl),
          channel,
          message,
        ]),
      );
    },
    async delete(key) {
      const message = JSON.stringify({ k: key, v: null } satisfies UpdateMessage);
      await run("delete a token", () =>
        client.sendCommand(["EVAL", DELETE_AND_PUBLISH, "1", tokenKey(key), channel, message]),
      );
    },
    watch(key?: string) {
      return key === undefined ? allUpdates$ : allUpdates$.pipe(filter((u) => u.key === key));
    },
    async lease(key, ttlMs) {
      if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
        throw new TypeError(`Expected \`ttlMs\` to be a positive integer; got ${ttlMs}.`);
      }
      const holder = randomUUID();
      const reply = await run("take a lease", () =>
        client.sendCommand<string | null>([
          "SET",
          leaseKey(key),
          holder,
          "NX",
          "PX",
          String(ttlMs),
        ]),
      );
      if (reply !== "OK") return null;
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          try {
            const message = JSON.stringify({ k: key, v: null, r: 1 } satisfies UpdateMessage);
            await run("release a lease", () =>
              client.sendCommand([
                "EVAL",
                RELEASE_IF_HOLDER,
                "1",
                leaseKey(key),
                holder,
                channel,
                message,
              ]),
            );
          } catch (error) {
            // It lapses by itself after its TTL; nothing else to do.
            logger.info(
              `rx-identity Redis token store: lease of ${shortKey(key)} left to expire (${describe(error)}).`,
            );
          }
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      ciphers.close();
      updates.complete();
      const clients = [client, subscriber];
      subscriber = undefined;
      await Promise.all(
        clients.map(async (c) => {
          if (c === undefined) return;
          if (c.isReady) await c.close().catch(() => c.destroy());
          else if (c.isOpen) c.destroy();
        }),
      );
      await connecting;
    },
  };
  return store;
}
