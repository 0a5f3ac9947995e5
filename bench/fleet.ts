/**
 * Fleet figure: 8 processes, each with its own `ClientSecretCredential` following 100 keys
 * for 3 tokens per key (the first and 2 refreshes), against the emulator: how many token
 * requests reach it with the Redis token store shared by the fleet (on one `redis-server`,
 * then on a Redis Cluster of 3 masters and 3 replicas), and without any store.
 * With the store the fleet should make one request per key per cycle (target at most 315 for
 * 300 key-cycles); without it every process asks for itself (8 × 100 × 3 = 2,400).
 *
 * Each process is a real `node` child (`test/fleet/fixtures/credential-child.ts`, the one the
 * fleet tests run) and Redis is a real `redis-server` on a free loopback port (the cluster:
 * six, joined by `redis-cli --cluster create`), started and stopped here. Tokens live 30 s with `refresh_in` 10 s (quick: 10 s and 4 s), so a run takes
 * a few refresh cycles of real time. This module prints nothing: it returns the numbers.
 *
 * The children use the library's default retry backoff and follow a scope again should its
 * stream error, as an application would: with the tests' 50–200 ms backoff, 800 cold keys
 * failing at once on a loaded machine retried faster than the emulator could answer, and a
 * scope whose stream errored kept its process (and the run) from ever finishing.
 */
import { randomUUID } from "node:crypto";
import { DEFAULT_REFRESH_POLICY } from "../src/streams/index.js";
import type { EntraEmulator } from "../src/testing/index.js";
import type { ChildConfig } from "../test/fleet/fixtures/credential-child.js";
import { startChild, type FleetChild } from "../test/fleet/support/children.js";
import { startRedis } from "../test/support/redis.js";
import { startRedisCluster } from "../test/support/redis-cluster.js";

/** Options of {@link measureFleet}. */
export interface MeasureFleetOptions {
  /**
   * Fewer keys (20 instead of 100), for `npm run bench -- --quick`.
   * @default false
   */
  readonly quick: boolean;
  /** The emulator to count requests at; an application with short-lived tokens is registered on it. */
  readonly emulator: EntraEmulator;
  /**
   * A Redis to share tokens through.
   * @default a `redis-server` started on a free loopback port for the run
   */
  readonly redisUrl?: string | undefined;
  /**
   * Processes in the fleet.
   * @default 8
   */
  readonly processes?: number | undefined;
  /**
   * Keys (scopes) each process follows.
   * @default 100 (20 when `quick`)
   */
  readonly keys?: number | undefined;
  /**
   * Tokens per key each process waits for (the first and `cycles - 1` refreshes).
   * @default 3
   */
  readonly cycles?: number | undefined;
}

/** One fleet run: requests at the emulator and tokens the processes received. */
export interface FleetRun {
  /** Token requests that reached the emulator. */
  readonly requests: number;
  /** Tokens the processes' `token$` streams emitted, in all. */
  readonly tokensEmitted: number;
  /** Wall time of the run, milliseconds. */
  readonly wallMs: number;
  /** Stream errors the processes saw (each scope was followed again after one). */
  readonly streamErrors: number;
  /**
   * Processes that logged the token store unavailable at least once (each then acquires on
   * its own until it answers): what explains requests above the ideal on a loaded machine.
   */
  readonly storeOutages: number;
}

/** What {@link measureFleet} returns. */
export interface FleetResult {
  readonly processes: number;
  readonly keys: number;
  readonly cycles: number;
  /** `keys × cycles`: one request per key per cycle is the ideal with the store. */
  readonly ideal: number;
  /** The bound for the full size: at most `ideal × 1.05` (315 for 100 keys × 3 cycles). */
  readonly target: number;
  readonly withStore: FleetRun;
  /** With the store on a Redis Cluster (3 masters, 3 replicas). */
  readonly withClusterStore: FleetRun;
  readonly withoutStore: FleetRun;
}

const CHILD_SCOPE = (index: number): string => `https://fleet-${index}.bench.example/.default`;
/**
 * Token lifetime and `refresh_in`. The full size runs longer cycles: without the store 8
 * processes ask for 800 tokens per cycle, which two cores do not sign within a 4 s cycle.
 */
const LIFETIME = { quick: { lifetime: 10, refreshIn: 4 }, full: { lifetime: 30, refreshIn: 10 } };
/**
 * A run that has not finished after this long is stopped (its children killed) and reported
 * as failed, with what each unfinished process had received and the end of its log.
 */
const RUN_LIMIT_MS = 120_000;

/** What an unfinished process got so far and the end of its log, for a run that overran. */
function unfinished(children: readonly FleetChild[]): string {
  return children
    .flatMap((child, index) => {
      if (child.events.some((event) => event.type === "done")) return [];
      const tokens = child.events.filter((event) => event.type === "token").length;
      const errors = child.events.filter((event) => event.type === "error").length;
      const log = child.stderr().split("\n").slice(-20).join("\n");
      return [`process ${index}: ${tokens} tokens, ${errors} stream errors; log tail:\n${log}`];
    })
    .join("\n");
}

async function runFleet(
  emulator: EntraEmulator,
  processes: number,
  config: ChildConfig,
): Promise<FleetRun> {
  const started = performance.now();
  // Warnings (store unavailable, acquisitions failing) go to stderr, for the overrun report.
  const children: FleetChild[] = Array.from({ length: processes }, () =>
    startChild(config, { AZURE_LOG_LEVEL: "warning" }),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `the fleet (${config.redisUrl === undefined && config.redisCluster === undefined ? "without" : "with"} the store) did not finish within ${RUN_LIMIT_MS} ms (${emulator.requestCount({ clientId: config.clientId })} requests so far):\n${unfinished(children)}`,
            ),
          ),
        RUN_LIMIT_MS,
      );
    });
    const codes = await Promise.race([Promise.all(children.map((child) => child.exited)), limit]);
    const failed = codes.findIndex((code) => code !== 0);
    if (failed !== -1) {
      throw new Error(
        `fleet process ${failed} exited with ${String(codes[failed])}:\n${children[failed]?.stderr() ?? ""}`,
      );
    }
  } finally {
    clearTimeout(timer);
    await Promise.all(children.map((child) => child.kill()));
  }
  return {
    requests: emulator.requestCount({ clientId: config.clientId }),
    tokensEmitted: children.reduce(
      (sum, child) => sum + child.events.filter((event) => event.type === "token").length,
      0,
    ),
    wallMs: performance.now() - started,
    storeOutages: children.filter((child) => child.stderr().includes("token store unavailable"))
      .length,
    streamErrors: children.reduce(
      (sum, child) => sum + child.events.filter((event) => event.type === "error").length,
      0,
    ),
  };
}

/**
 * Runs the fleet three times (with the Redis store on one node, on a cluster, then without
 * any store) and returns the request counts.
 *
 * @example
 * ```ts
 * const fleet = await measureFleet({ quick: false, emulator });
 * fleet.withStore.requests; // about 300 (target ≤ 315)
 * fleet.withClusterStore.requests; // about 300 too
 * fleet.withoutStore.requests; // 2,400
 * ```
 */
export async function measureFleet(options: MeasureFleetOptions): Promise<FleetResult> {
  const processes = options.processes ?? 8;
  const keys = options.keys ?? (options.quick ? 20 : 100);
  const cycles = options.cycles ?? 3;
  const { emulator } = options;
  const redis = options.redisUrl === undefined ? await startRedis() : undefined;
  const redisUrl = options.redisUrl ?? (redis as { url: string }).url;
  const caFile = emulator.caFile;
  const timing = LIFETIME[options.quick ? "quick" : "full"];

  const appConfig = (): ChildConfig => {
    const clientId = `fleet-bench-${randomUUID()}`;
    const clientSecret = `fleet-bench-${randomUUID()}`;
    emulator.registerApplication({
      clientId,
      clientSecret,
      tokenLifetimeSeconds: timing.lifetime,
      refreshInSeconds: timing.refreshIn,
    });
    return {
      mode: "stream",
      authorityHost: emulator.authorityHost,
      caFile,
      tenantId: "f2000000-0000-4000-8000-0000000000f2",
      clientId,
      clientSecret,
      scopes: Array.from({ length: keys }, (_, i) => CHILD_SCOPE(i)),
      maxTokens: cycles,
      resubscribeOnError: true,
      retry: {
        retryBaseMs: DEFAULT_REFRESH_POLICY.retryBaseMs,
        retryCapMs: DEFAULT_REFRESH_POLICY.retryCapMs,
      },
    };
  };

  try {
    const shared = appConfig();
    const withStore = await runFleet(emulator, processes, {
      ...shared,
      redisUrl,
      keyPrefix: shared.clientId,
    });
    const cluster = await startRedisCluster();
    let withClusterStore: FleetRun;
    try {
      const clustered = appConfig();
      withClusterStore = await runFleet(emulator, processes, {
        ...clustered,
        redisCluster: cluster.rootNodes.map((node) => node.url),
        keyPrefix: clustered.clientId,
      });
    } finally {
      await cluster.stop();
    }
    const withoutStore = await runFleet(emulator, processes, appConfig());
    const ideal = keys * cycles;
    return {
      processes,
      keys,
      cycles,
      ideal,
      target: Math.floor(ideal * 1.05),
      withStore,
      withClusterStore,
      withoutStore,
    };
  } finally {
    await redis?.stop();
  }
}
