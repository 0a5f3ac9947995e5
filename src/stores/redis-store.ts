import { randomUUID } from "node:crypto";
import { Observable, Subject, filter, share } from "rxjs";
import { backoffDelay } from "../operators/backoff-delay.js";
import { commandDeadline, settledWithin } from "./command-deadline.js";
import { describeOpenFailure, type EntryCipher } from "./entry-cipher.js";
import { TokenStoreUnavailableError } from "./errors.js";
import {
  openRedisConnection,
  type RedisConnectionSettings,
  type RedisSubscription,
} from "./redis-connection.js";
import {
  SKEW_TOLERANCE_MS,
  isUpdateMessage,
  keyLayout,
  reanchored,
  storeScripts,
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
 * On a Redis Cluster (`cluster` instead of `url`) the same keys carry a hash tag per slot
 * group, shared with that group's channel, so each script runs on one master, and updates
 * go by sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`); see `keyLayout` in redis-protocol.ts for
 * the layout and why.
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

/** Where to connect: exactly one of `url` and `cluster`, checked before any connection. */
function targetOf(options: RedisTokenStoreOptions): RedisConnectionSettings["target"] {
  const { url, cluster, tls } = options;
  if (url !== undefined && cluster !== undefined) {
    throw new TypeError(
      "Expected either `url` (one Redis) or `cluster` (a Redis Cluster), not both.",
    );
  }
  if (cluster === undefined) {
    const target = url ?? "redis://127.0.0.1:6379";
    if (tls !== undefined && !target.startsWith("rediss:")) {
      throw new TypeError(
        "Expected a `rediss://` URL with `tls`: the connection would not use TLS.",
      );
    }
    return { url: target };
  }
  const roots = (cluster as { rootNodes?: unknown }).rootNodes;
  if (!Array.isArray(roots) || roots.length === 0) {
    throw new TypeError(
      'Expected `cluster.rootNodes` to list at least one node, such as [{ url: "redis://10.0.0.1:6379" }].',
    );
  }
  return { cluster };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // node-redis's TimeoutError has no message and keeps the name "Error": name its class.
  return `${error.name}: ${error.message === "" ? error.constructor.name : error.message}`;
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
  const target = targetOf(options);
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

  const connection = await openRedisConnection({
    target,
    tls: options.tls,
    credentials: options.credentials,
    commandTimeoutMs,
    connectTimeoutMs,
    // The library's one backoff formula, as the engine and `retryWithBackoff` use it.
    reconnectStrategy: (retries: number) =>
      Math.round(
        backoffDelay({ attempt: retries, baseMs: baseDelayMs, capMs: maxDelayMs, random }),
      ),
  });
  const { tokenKey, leaseKey, channelOf, channels } = keyLayout(
    prefix,
    options.credentialId,
    connection.cluster,
  );
  const scripts = storeScripts(connection.publish);

  let available = false;
  let everUp = false;
  let closed = false;
  /** Settles on the first `ready`: commands sent while the first connection is still being made wait for it. */
  let firstReady!: () => void;
  const firstConnection = new Promise<void>((resolve) => (firstReady = resolve));
  let toldWhyNotConnected = false;
  const markDown = (reason: string): void => {
    if (closed) return; // connections closing on `close()` are no outage
    if (available) {
      logger.warning(
        `rx-identity Redis token store unavailable (${reason}); processes acquire tokens on their own until it returns.`,
      );
    } else if (!everUp && !toldWhyNotConnected) {
      // A store that never connected says why once (a CA not trusted, a wrong password),
      // rather than only that it is not connected.
      toldWhyNotConnected = true;
      logger.warning(`rx-identity Redis token store cannot connect (${reason}).`);
    }
    available = false;
  };
  // node-redis emits "error" for every failed (re)connect; an unhandled "error" event
  // would crash the process.
  connection.onError((error: unknown) => markDown(describe(error)));
  const markUp = (): void => {
    if (everUp && !available) logger.info("rx-identity Redis token store available again.");
    everUp = true;
    available = true;
  };
  connection.onReady(() => {
    firstReady();
    markUp();
  });

  const connecting = connection.connect().catch((error: unknown) => {
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

  async function run<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (closed) throw new Error("The token store is closed; create a new store to keep using it.");
    const limit = commandDeadline(what, commandTimeoutMs);
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
  let subscriber: RedisSubscription | undefined;
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
    // Updates published while the subscriber was away (a reconnect, a failover) are lost,
    // which is why the engine still reads the store before acquiring.
    const sub = connection.subscribe(channels, onMessage);
    subscriber = sub;
    const subscription = updates.subscribe(observer);
    const active = sub.active;
    subscribed = active;
    void active.then(() => {
      if (subscribed === active) subscribed = undefined;
    });
    return () => {
      subscription.unsubscribe();
      if (subscribed === active) subscribed = undefined;
      if (subscriber === sub) subscriber = undefined;
      sub.close();
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
        connection.send<[string | null, number]>(tokenKey(key), [
          "EVAL",
          scripts.getWithTtl,
          "1",
          tokenKey(key),
        ]),
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
        connection.send(tokenKey(key), [
          "EVAL",
          scripts.setAndPublish,
          "1",
          tokenKey(key),
          sealed,
          String(ttl),
          channelOf(key),
          message,
        ]),
      );
    },
    async delete(key) {
      const message = JSON.stringify({ k: key, v: null } satisfies UpdateMessage);
      await run("delete a token", () =>
        connection.send(tokenKey(key), [
          "EVAL",
          scripts.deleteAndPublish,
          "1",
          tokenKey(key),
          channelOf(key),
          message,
        ]),
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
        connection.send<string | null>(leaseKey(key), [
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
              connection.send(leaseKey(key), [
                "EVAL",
                scripts.releaseIfHolder,
                "1",
                leaseKey(key),
                holder,
                channelOf(key),
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
      subscriber?.close();
      subscriber = undefined;
      await connection.close();
      await connecting;
    },
  };
  return store;
}
