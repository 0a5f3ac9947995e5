/**
 * A Redis that authenticates as Azure's does, for the adapter tests: a real `redis-server`
 * whose `default` user is off, an ACL user named after the service principal's object id,
 * and the token-checking proxy in front of it, with the Entra ID emulator issuing the tokens.
 */
import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startAzureRedisProxy, type AzureRedisProxy } from "./azure-redis-proxy.js";
import { tenantA } from "./emulator.js";
import { startRedis, type RunningRedis } from "./redis.js";

export interface AzureLikeRedis {
  readonly emulator: EntraEmulator;
  readonly redis: RunningRedis;
  readonly proxy: AzureRedisProxy;
  /** The service principal's object id: the Redis user. */
  readonly objectId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** A client straight to the real server (bypassing the proxy), as an administrator. */
  readonly admin: {
    get(key: string): Promise<string | null>;
    sendCommand<T = unknown>(args: string[]): Promise<T>;
  };
  /** A new credential against the emulator (close it). */
  credential(): ClientSecretCredential;
  stop(): Promise<void>;
}

/**
 * Makes a fresh server take passwords as Azure's does: the `default` user off, a user named
 * after the service principal's object id, and an `admin` user for the test itself.
 */
export async function configureAcl(
  url: string,
  objectId: string,
  aclPassword: string,
  adminPassword: string,
): Promise<void> {
  const setup = createClient({ url });
  await setup.connect();
  await setup.sendCommand([
    "ACL",
    "SETUSER",
    objectId,
    "on",
    `>${aclPassword}`,
    "~*",
    "&*",
    "+@all",
  ]);
  await setup.sendCommand([
    "ACL",
    "SETUSER",
    "admin",
    "on",
    `>${adminPassword}`,
    "~*",
    "&*",
    "+@all",
  ]);
  await setup.sendCommand(["ACL", "SETUSER", "default", "off"]);
  await setup.close();
}

/** Starts the emulator (tokens living `tokenLifetimeSeconds`), Redis with ACLs, and the proxy. */
export async function startAzureLikeRedis(tokenLifetimeSeconds: number): Promise<AzureLikeRedis> {
  const emulator = await startEntraEmulator();
  const clientId = randomUUID();
  const clientSecret = `secret-${randomUUID()}`;
  const objectId = randomUUID();
  emulator.registerApplication({ clientId, clientSecret, objectId, tokenLifetimeSeconds });
  const redis = await startRedis();
  const aclPassword = `acl-${randomUUID()}`;
  const adminPassword = `admin-${randomUUID()}`;
  await configureAcl(redis.url, objectId, aclPassword, adminPassword);
  const admin = createClient({ url: redis.url, username: "admin", password: adminPassword });
  admin.on("error", () => undefined);
  await admin.connect();
  const proxy = await startAzureRedisProxy({
    upstreamPort: redis.port,
    verify: (token) => emulator.verifyToken(token),
    users: new Map([[objectId, aclPassword]]),
  });
  return {
    emulator,
    redis,
    proxy,
    objectId,
    clientId,
    clientSecret,
    admin,
    credential: () =>
      new ClientSecretCredential(tenantA, clientId, clientSecret, {
        authorityHost: emulator.authorityHost,
        ca: emulator.caCertificate,
      }),
    async stop() {
      await admin.close().catch(() => admin.destroy());
      await proxy.stop();
      await redis.stop();
      await emulator.stop();
    },
  };
}
