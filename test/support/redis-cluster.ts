/**
 * A real Redis Cluster on loopback for the store tests: `masters` × (1 + `replicas`)
 * `redis-server --cluster-enabled yes` processes (each started by {@link startRedis}, so each
 * stops by itself should the test process die), joined by `redis-cli --cluster create`, with a
 * short `cluster-node-timeout` so a killed master's replica takes over within seconds.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { createClient } from "redis";
import { startRedis, type RunningRedis } from "./redis.js";

const run = promisify(execFile);

/** A running cluster. */
export interface RunningRedisCluster {
  readonly nodes: readonly RunningRedis[];
  /** `[{ url }]` of every node, for `createCluster({ rootNodes })`. */
  readonly rootNodes: readonly { readonly url: string }[];
  /** The node that is master of the slot `key` hashes to now. */
  masterOf(key: string): Promise<RunningRedis>;
  /** Resolves once every live node reports `cluster_state:ok` and each slot has a live master. */
  healthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their files. Idempotent. */
  stop(): Promise<void>;
}

async function command<T>(node: RunningRedis, args: string[]): Promise<T> {
  const client = createClient({ url: node.url, socket: { reconnectStrategy: false } });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.sendCommand<T>(args);
  } finally {
    client.destroy();
  }
}

/**
 * Starts the cluster and waits until it is healthy (replicas in sync).
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster();
 * const store = await createRedisTokenStore({ cluster: { rootNodes: [...cluster.rootNodes] }, ... });
 * await cluster.stop();
 * ```
 */
export async function startRedisCluster(
  options: {
    readonly masters?: number;
    readonly replicas?: number;
    readonly nodeTimeoutMs?: number;
  } = {},
): Promise<RunningRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const directory = await mkdtemp(join(tmpdir(), "rx-identity-redis-cluster-"));
  const nodes: RunningRedis[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(directory, { recursive: true, force: true });
  };
  try {
    const started = await Promise.all(
      Array.from({ length: masters * (1 + replicas) }, async (_, i) =>
        startRedis({
          args: [
            // Its own folder: a replica writes the RDB of its first sync into `dir`.
            "--dir",
            await mkdir(join(directory, `node-${i}`)).then(() => join(directory, `node-${i}`)),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            String(options.nodeTimeoutMs ?? 1_000),
            // Replicas take over however briefly their link was down (the default factor 10
            // already allows it; 0 says so outright).
            "--cluster-replica-validity-factor",
            "0",
          ],
        }),
      ),
    );
    nodes.push(...started);
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    const byPort = new Map(nodes.map((node) => [node.port, node]));
    const alive = async (node: RunningRedis): Promise<boolean> =>
      command<string>(node, ["PING"]).then(
        () => true,
        () => false,
      );

    const cluster: RunningRedisCluster = {
      nodes,
      rootNodes: nodes.map((node) => ({ url: node.url })),
      async masterOf(key) {
        for (const node of nodes) {
          if (!(await alive(node))) continue;
          const slot = await command<number>(node, ["CLUSTER", "KEYSLOT", key]);
          const ranges = await command<[number, number, [string, number, string]][]>(node, [
            "CLUSTER",
            "SLOTS",
          ]);
          const range = ranges.find(([from, to]) => slot >= from && slot <= to);
          const master = range === undefined ? undefined : byPort.get(Number(range[2][1]));
          if (master !== undefined) return master;
        }
        throw new Error(`no master serves ${key}`);
      },
      async healthy(timeoutMs = 15_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const live = (
            await Promise.all(nodes.map(async (n) => ((await alive(n)) ? n : undefined)))
          ).filter((n): n is RunningRedis => n !== undefined);
          const infos = await Promise.all(
            live.map((node) => command<string>(node, ["CLUSTER", "INFO"]).catch(() => "")),
          );
          const replication = await Promise.all(
            live.map((node) => command<string>(node, ["INFO", "replication"]).catch(() => "")),
          );
          const ok =
            infos.every((info) => info.includes("cluster_state:ok")) &&
            replication.every(
              (info) => info.includes("role:master") || info.includes("master_link_status:up"),
            );
          if (ok) return;
          if (Date.now() > deadline) {
            throw new Error(
              `the Redis Cluster is not healthy after ${timeoutMs} ms:\n${infos.join("\n")}`,
            );
          }
          await sleep(100);
        }
      },
      stop,
    };
    await cluster.healthy();
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}
