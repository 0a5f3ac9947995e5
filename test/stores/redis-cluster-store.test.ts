/**
 * The Redis token store on a real Redis Cluster (3 masters, 3 replicas on loopback): keys of
 * one token share a slot with their update channel, every process hears of every write
 * (sharded pub/sub), and bad configurations fail before any connection.
 */
import { once } from "node:events";
import { connect, createServer, type AddressInfo } from "node:net";
import { createCluster } from "redis";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import {
  createRedisTokenStore,
  credentialIdOf,
  isTokenStoreUnavailableError,
  storeKeyOf,
  type RedisTokenStore,
  type RedisTokenStoreOptions,
} from "../../src/stores/index.js";
import { SLOT_GROUPS } from "../../src/stores/redis-protocol.js";
import { startRedisCluster, type RunningRedisCluster } from "../support/redis-cluster.js";

const SECRET = "cluster-s3cr3t~Value";
const fields = {
  authorityHost: "https://login.microsoftonline.com",
  clientId: "22222222-2222-3333-4444-555555555555",
  tenantId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
};
const CREDENTIAL = credentialIdOf(fields);
const keyOf = (i: number): string => storeKeyOf({ ...fields, scopes: [`https://r${i}/.default`] });

let cluster: RunningRedisCluster;
let raw: ReturnType<typeof createCluster>;
const stores: RedisTokenStore[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  raw = createCluster({ rootNodes: [...cluster.rootNodes] });
  raw.on("error", () => undefined);
  await raw.connect();
}, 30_000);
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await raw?.close();
  await cluster?.stop();
});

async function open(options: Partial<RedisTokenStoreOptions> = {}): Promise<RedisTokenStore> {
  const store = await createRedisTokenStore({
    cluster: { rootNodes: [...cluster.rootNodes] },
    clientSecret: SECRET,
    credentialId: CREDENTIAL,
    keyPrefix: "c",
    commandTimeoutMs: 500,
    ...options,
  });
  stores.push(store);
  return store;
}

const entry = (token: string) => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 });

describe("createRedisTokenStore({ cluster })", () => {
  test("a key's token, lease and update channel share one slot, and the keys spread over every master", async () => {
    const store = await open();
    const keys = Array.from({ length: 40 }, (_, i) => keyOf(i));

    await Promise.all(keys.map((key, i) => store.write(key, entry(`t${i}`))));
    const leases = await Promise.all(keys.map((key) => store.lease(key, 10_000)));
    const stored = await raw.keys("*"); // every master's keys (node-redis sends KEYS to all)

    const slotOf = (name: string): Promise<number> =>
      raw.sendCommand(name, true, ["CLUSTER", "KEYSLOT", name]);
    const slots = new Set<number>();
    for (const key of keys) {
      const names = stored.filter((name) => name.endsWith(key));
      expect(names).toHaveLength(2); // the token and the lease
      const [token, lease] = await Promise.all(names.map(slotOf));
      const channel = names[0]!.replace(/:(token|lease):.*$/, ":updates");
      expect(lease).toBe(token);
      expect(await slotOf(channel)).toBe(token);
      slots.add(token!);
    }
    const masters = new Set(
      await Promise.all(keys.map(async (key) => (await cluster.masterOf(names(stored, key))).port)),
    );
    expect(leases.every((lease) => lease !== null)).toBe(true);
    expect(slots.size).toBeGreaterThan(1);
    expect(masters.size).toBe(3);
    expect((await Promise.all(keys.map((key) => store.read(key)))).map((e) => e?.token)).toEqual(
      keys.map((_, i) => `t${i}`),
    );
  });

  test("a watcher hears every write and delete, whichever master holds the key (SSUBSCRIBE per slot group)", async () => {
    const writer = await open();
    const watcher = await open();
    // Enough keys that every slot group has one.
    const keys = Array.from({ length: 8 * SLOT_GROUPS }, (_, i) => keyOf(100 + i));
    const seen = firstValueFrom(watcher.watch().pipe(take(keys.length + 1), toArray()));
    await watcher.read(keys[0]!); // waits for the subscriptions

    await Promise.all(keys.map((key, i) => writer.write(key, entry(`w${i}`))));
    await writer.delete(keys[0]!);

    const updates = await seen;
    expect(new Set(updates.slice(0, -1).map((u) => u.entry?.token))).toEqual(
      new Set(keys.map((_, i) => `w${i}`)),
    );
    expect(updates.at(-1)).toEqual({ key: keys[0], entry: undefined });
  });

  test("a store whose root node does not answer yet returns unavailable and connects once it does", async () => {
    // A root node that refuses every connection until `up`, then forwards to a real node.
    let up = false;
    let refused = 0;
    const target = cluster.nodes[0]!;
    const root = createServer((socket) => {
      if (!up) {
        refused++;
        socket.destroy();
        return;
      }
      const upstream = connect(target.port, "127.0.0.1");
      socket.pipe(upstream).pipe(socket);
      const end = (): void => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    root.listen(0, "127.0.0.1");
    await once(root, "listening");
    const url = `redis://127.0.0.1:${(root.address() as AddressInfo).port}`;

    try {
      const store = await open({
        cluster: { rootNodes: [{ url }] },
        connectTimeoutMs: 200,
        reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
      });
      const failure = await store.read(keyOf(900)).catch((e: unknown) => e);
      const whileDown = store.available;
      up = true;
      await vi.waitFor(() => store.write(keyOf(900), entry("late")), {
        timeout: 5_000,
        interval: 50,
      });

      expect(isTokenStoreUnavailableError(failure)).toBe(true);
      expect(whileDown).toBe(false);
      expect(refused).toBeGreaterThan(1); // tried again, not given up after the first refusal
      expect((await store.read(keyOf(900)))?.token).toBe("late");
      expect(store.available).toBe(true);
    } finally {
      root.close();
    }
  });

  test("url and cluster together, a cluster with no root node, or tls on redis://, fail with a TypeError before any connection", async () => {
    // A listener that counts connection attempts where Redis would be.
    let connections = 0;
    const listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    listener.listen(0, "127.0.0.1");
    await once(listener, "listening");
    const url = `redis://127.0.0.1:${(listener.address() as AddressInfo).port}`;
    const common = { clientSecret: SECRET, credentialId: CREDENTIAL };

    const both = createRedisTokenStore({ url, cluster: { rootNodes: [{ url }] }, ...common });
    const none = createRedisTokenStore({ cluster: { rootNodes: [] }, ...common });
    const plainWithTls = createRedisTokenStore({
      url,
      tls: { ca: "-----BEGIN CERTIFICATE-----" },
      ...common,
    });

    await expect(both).rejects.toThrow(
      new TypeError("Expected either `url` (one Redis) or `cluster` (a Redis Cluster), not both."),
    );
    await expect(none).rejects.toThrow(/Expected `cluster.rootNodes` to list at least one node/);
    await expect(none).rejects.toBeInstanceOf(TypeError);
    await expect(plainWithTls).rejects.toThrow(/Expected a `rediss:\/\/` URL with `tls`/);
    listener.close();
    await once(listener, "close");
    expect(connections).toBe(0);
  });
});

function names(stored: readonly string[], key: string): string {
  const name = stored.find((n) => n.endsWith(`token:${key}`));
  if (name === undefined) throw new Error(`no token stored for ${key}`);
  return name;
}
