/**
 * The Redis token store's connections, to one node (`createClient`) or to a cluster
 * (`createCluster`), behind one small interface: a command routed by its key, a subscriber
 * for the update channels, and the events that say whether Redis answers. The store asks it
 * only which key layout and publish command to use.
 */
import type * as Redis from "redis";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectionOptions } from "node:tls";
import {
  loadRedis,
  type PublishCommand,
  type RedisClient,
  type RedisModule,
} from "./redis-protocol.js";

/** The TLS settings the store passes to every connection (`rediss://`). */
export type RedisTlsOptions = Pick<
  ConnectionOptions,
  "ca" | "cert" | "key" | "passphrase" | "servername" | "rejectUnauthorized"
>;

/** What {@link openRedisConnection} needs. */
export interface RedisConnectionSettings {
  /** A URL for one node, or node-redis cluster options. Exactly one of the two. */
  readonly target:
    { readonly url: string } | { readonly cluster: Redis.RedisClusterOptions<Redis.RedisModules> };
  readonly tls: RedisTlsOptions | undefined;
  readonly credentials: Redis.RedisClientOptions["credentialsProvider"] | undefined;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectStrategy: (retries: number) => number;
}

/** A subscription to update channels, on a connection of its own. */
export interface RedisSubscription {
  /** Settles once every channel is subscribed (or subscribing failed). */
  readonly active: Promise<void>;
  close(): void;
}

/** One node or a cluster, as the store uses it. */
export interface RedisConnection {
  /** How scripts announce a change: `PUBLISH` on one node, `SPUBLISH` on a cluster. */
  readonly publish: PublishCommand;
  readonly cluster: boolean;
  connect(): Promise<unknown>;
  /** Sends `args`; on a cluster, to the master of `key`'s slot (following `MOVED`). */
  send<T>(key: string, args: readonly string[]): Promise<T>;
  /** A connection (or a node of the cluster) failed. */
  onError(listener: (error: unknown) => void): void;
  /** The connection is ready (on a cluster: the topology is known and its nodes connected). */
  onReady(listener: () => void): void;
  subscribe(channels: readonly string[], listener: (message: string) => void): RedisSubscription;
  close(): Promise<void>;
}

/**
 * node-redis's own command timeout, which drops a command still waiting to be written (so a
 * lease is never taken after its caller gave up). It counts on a bare timer, which a busy
 * event loop fires late, as if Redis had not answered: it is set to the longest the store's
 * own deadline ever waits (4 × `commandTimeoutMs`, see command-deadline.ts), so it never
 * fails a command before that deadline would.
 */
function nodeRedisTimeout(settings: RedisConnectionSettings): { timeout: number } {
  return { timeout: 4 * settings.commandTimeoutMs };
}

/** What every command connection gets: fail at once while disconnected, bounded queues. */
function commandDefaults(settings: RedisConnectionSettings) {
  return {
    ...(settings.credentials === undefined ? {} : { credentialsProvider: settings.credentials }),
    // Fail at once while disconnected instead of queueing: the caller has a better plan.
    disableOfflineQueue: true,
    // Bounds what piles up behind a frozen Redis; beyond it commands fail at once.
    commandsQueueMaxLength: 1_000,
  } as const;
}

async function closeQuietly(client: {
  isReady: boolean;
  isOpen: boolean;
  close(): Promise<unknown>;
  destroy(): void;
}): Promise<void> {
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}

function nodeConnection(
  redis: RedisModule,
  url: string,
  settings: RedisConnectionSettings,
): RedisConnection {
  const client: RedisClient = redis.createClient({
    url,
    ...commandDefaults(settings),
    commandOptions: nodeRedisTimeout(settings),
    socket: {
      ...settings.tls,
      connectTimeout: settings.connectTimeoutMs,
      reconnectStrategy: settings.reconnectStrategy,
    },
  });
  return {
    publish: "PUBLISH",
    cluster: false,
    connect: () => client.connect(),
    send: (_key, args) => client.sendCommand([...args]),
    onError: (listener) => void client.on("error", listener),
    onReady: (listener) => void client.on("ready", listener),
    subscribe(channels, listener) {
      // The subscriber queues SUBSCRIBE while offline and node-redis re-subscribes after a
      // reconnect.
      const sub = client.duplicate({ disableOfflineQueue: false, commandOptions: {} });
      sub.on("error", () => undefined); // the command client already reports outages
      const active = sub
        .connect()
        .then(() => sub.subscribe([...channels], listener))
        .catch(() => undefined);
      return { active, close: () => void closeQuietly(sub) };
    },
    close: () => closeQuietly(client),
  };
}

/** The user name and password of a `redis[s]://user:password@host` URL, if any. */
function userOf(url: string | undefined): { username?: string; password?: string } {
  if (url === undefined) return {};
  const parsed = new URL(url);
  return {
    ...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
  };
}

/**
 * Connects `cluster`, again and again with `backoff` until `signal` aborts. A single node's
 * client reconnects by itself until it gets through; a cluster's `connect()` gives up once no
 * root node answers (`RootNodesUnavailableError`), and the store would never connect.
 */
async function connectUntilClosed(
  cluster: { connect(): Promise<unknown> },
  backoff: (attempt: number) => number,
  signal: AbortSignal,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await cluster.connect();
      return;
    } catch (error) {
      if (signal.aborted) throw error;
      await sleep(backoff(attempt), undefined, { signal, ref: false }).catch(() => {
        throw error; // closed while waiting
      });
    }
  }
}

function clusterConnection(
  redis: RedisModule,
  options: Redis.RedisClusterOptions<Redis.RedisModules>,
  settings: RedisConnectionSettings,
): RedisConnection {
  const rootUrl = options.rootNodes[0]?.url;
  const tls = settings.tls !== undefined || rootUrl?.startsWith("rediss:") === true;
  // node-redis builds the connections to the nodes it discovers from `defaults` alone, not
  // from the root nodes' URLs: the user, password and TLS of the first root URL go there too.
  const defaults = {
    ...userOf(rootUrl),
    ...options.defaults,
    ...commandDefaults(settings),
    socket: {
      ...options.defaults?.socket,
      ...(tls ? { tls: true as const, ...settings.tls } : {}),
      connectTimeout: settings.connectTimeoutMs,
      reconnectStrategy: settings.reconnectStrategy,
    },
  };
  const cluster = redis.createCluster({
    ...options,
    defaults,
    commandOptions: nodeRedisTimeout(settings),
    // A master that stopped answering is looked up again after this long of reconnecting
    // (node-redis's default: 5 s); that is how the store finds the replica promoted in its
    // place, as no `MOVED` comes from a dead node.
    topologyRefreshOnReconnectionAttemptStrategy:
      options.topologyRefreshOnReconnectionAttemptStrategy ?? 1_000,
  });
  const closing = new AbortController();
  return {
    publish: "SPUBLISH",
    cluster: true,
    connect: () => connectUntilClosed(cluster, settings.reconnectStrategy, closing.signal),
    send: (key, args) => cluster.sendCommand(key, false, [...args]),
    onError(listener) {
      cluster.on("error", listener);
      cluster.on("node-error", listener);
    },
    onReady: (listener) => void cluster.on("connect", listener),
    subscribe(channels, listener) {
      // Only the sharded subscriber connections (one per master owning a channel's slot):
      // node-redis subscribes again on the new master after a failover or a resharding.
      const sub = cluster.duplicate({
        minimizeConnections: true,
        commandOptions: {},
        defaults: { ...defaults, disableOfflineQueue: false },
      });
      sub.on("error", () => undefined); // the command connections already report outages
      sub.on("sharded-channel-moved-error", () => undefined);
      const unsubscribed = new AbortController();
      const active = connectUntilClosed(sub, settings.reconnectStrategy, unsubscribed.signal)
        .then(() => Promise.all(channels.map((channel) => sub.sSubscribe(channel, listener))))
        .then(() => undefined)
        .catch(() => undefined);
      return {
        active,
        close: () => {
          unsubscribed.abort();
          void closeQuietly(sub);
        },
      };
    },
    close() {
      closing.abort();
      return closeQuietly(cluster);
    },
  };
}

/**
 * Opens (without connecting) the connection the settings ask for.
 *
 * @example
 * ```ts
 * const connection = await openRedisConnection({ target: { url }, ...settings });
 * await connection.connect();
 * ```
 */
export async function openRedisConnection(
  settings: RedisConnectionSettings,
): Promise<RedisConnection> {
  const redis = await loadRedis();
  return "url" in settings.target
    ? nodeConnection(redis, settings.target.url, settings)
    : clusterConnection(redis, settings.target.cluster, settings);
}
