/**
 * A RESP proxy in front of a real `redis-server` that authenticates as Azure Cache for Redis
 * and Azure Managed Redis do with Microsoft Entra ID:
 *
 * - `AUTH <user> <token>` (RESP2) and `HELLO 3 AUTH <user> <token>` (RESP3) are accepted when
 *   the token's signature verifies (the emulator's key), its `aud` is the Redis resource, its
 *   `exp` is in the future and `<user>` is its `oid`; the proxy then passes the command on with
 *   the ACL user's real password, so the real server's ACLs decide the rest. Any other token
 *   is passed on with a wrong password, so the real server answers `WRONGPASS` in order.
 * - A connection whose last accepted token expires without a fresh `AUTH` is closed, as Azure
 *   closes it (counted in `closedForExpiry`).
 *
 * Everything else passes through byte for byte. Only loopback; `stop()` closes every socket.
 */
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";

/** What the proxy saw. */
export interface AzureRedisProxyStats {
  /** Client connections accepted. */
  connections: number;
  /** `AUTH` / `HELLO AUTH` commands with a valid token (the first of each connection too). */
  authAccepted: number;
  /** `AUTH` / `HELLO AUTH` commands with a token refused (bad signature, expired, wrong user). */
  authRefused: number;
  /** Connections closed because their token expired without a fresh `AUTH`. */
  closedForExpiry: number;
}

export interface AzureRedisProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly stats: AzureRedisProxyStats;
  /** Zeroes the counters. */
  resetStats(): void;
  stop(): Promise<void>;
}

export interface AzureRedisProxyOptions {
  /** The real server's port on 127.0.0.1. */
  readonly upstreamPort: number;
  /** Verifies a token's signature and returns its claims, or throws (`emulator.verifyToken`). */
  readonly verify: (token: string) => Record<string, unknown>;
  /** ACL user (the `oid`) → its real password on the upstream server. */
  readonly users: ReadonlyMap<string, string>;
  /** @default "https://redis.azure.com" */
  readonly audience?: string;
  /** When the proxy closes a connection for expiry, the clock it reads. @default Date.now */
  readonly now?: () => number;
}

const CRLF = Buffer.from("\r\n");

function encode(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) parts.push(Buffer.from(`$${arg.length}\r\n`), arg, CRLF);
  return Buffer.concat(parts);
}

/**
 * Splits what a client sends into commands: RESP arrays of bulk strings (what every client
 * library sends) or inline lines. Returns the complete ones and keeps the rest.
 */
function createCommandReader(): (chunk: Buffer) => (Buffer[] | Buffer)[] {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const out: (Buffer[] | Buffer)[] = [];
    for (;;) {
      if (pending.length === 0) break;
      if (pending[0] !== 0x2a /* "*" */) {
        const end = pending.indexOf(CRLF);
        if (end < 0) break;
        out.push(pending.subarray(0, end + 2));
        pending = pending.subarray(end + 2);
        continue;
      }
      let offset = 0;
      const readLine = (): string | undefined => {
        const end = pending.indexOf(CRLF, offset);
        if (end < 0) return undefined;
        const line = pending.toString("latin1", offset, end);
        offset = end + 2;
        return line;
      };
      const header = readLine();
      if (header === undefined) break;
      const count = Number(header.slice(1));
      const args: Buffer[] = [];
      let complete = true;
      for (let i = 0; i < count; i++) {
        const size = readLine();
        if (size === undefined) {
          complete = false;
          break;
        }
        const length = Number(size.slice(1));
        if (pending.length < offset + length + 2) {
          complete = false;
          break;
        }
        args.push(Buffer.from(pending.subarray(offset, offset + length)));
        offset += length + 2;
      }
      if (!complete) break;
      out.push(args);
      pending = pending.subarray(offset);
    }
    return out;
  };
}

/**
 * Starts the proxy on a free loopback port.
 *
 * @example
 * ```ts
 * const proxy = await startAzureRedisProxy({
 *   upstreamPort: redis.port,
 *   verify: (token) => emulator.verifyToken(token),
 *   users: new Map([[objectId, aclPassword]]),
 * });
 * ```
 */
export async function startAzureRedisProxy(
  options: AzureRedisProxyOptions,
): Promise<AzureRedisProxy> {
  const audience = options.audience ?? "https://redis.azure.com";
  const now = options.now ?? Date.now;
  const stats: AzureRedisProxyStats = {
    connections: 0,
    authAccepted: 0,
    authRefused: 0,
    closedForExpiry: 0,
  };
  const sockets = new Set<Socket>();

  /** The real password for a valid token of `user`, and when the token expires; else undefined. */
  const check = (user: string, token: string): { password: string; exp: number } | undefined => {
    let claims: Record<string, unknown>;
    try {
      claims = options.verify(token);
    } catch {
      return undefined;
    }
    const exp = typeof claims["exp"] === "number" ? claims["exp"] * 1000 : 0;
    const password = options.users.get(user);
    if (password === undefined || claims["oid"] !== user) return undefined;
    if (claims["aud"] !== audience || exp <= now()) return undefined;
    return { password, exp };
  };

  const server = createServer((client) => {
    stats.connections++;
    const upstream = createConnection({ host: "127.0.0.1", port: options.upstreamPort });
    sockets.add(client);
    sockets.add(upstream);
    let expiry: NodeJS.Timeout | undefined;
    const close = (): void => {
      clearTimeout(expiry);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
    upstream.on("data", (chunk: Buffer) => client.write(chunk));

    const authenticate = (user: string, token: string): Buffer => {
      const valid = check(user, token);
      if (valid === undefined) {
        stats.authRefused++;
        return Buffer.from("refused-token");
      }
      stats.authAccepted++;
      clearTimeout(expiry);
      expiry = setTimeout(() => {
        stats.closedForExpiry++;
        close();
      }, valid.exp - now());
      return Buffer.from(valid.password);
    };

    const read = createCommandReader();
    client.on("data", (chunk: Buffer) => {
      for (const command of read(chunk)) {
        if (Buffer.isBuffer(command)) {
          upstream.write(command);
          continue;
        }
        const name = command[0]?.toString("latin1").toUpperCase();
        if (name === "AUTH" && command.length >= 2) {
          const user = command.length >= 3 ? command[1]!.toString() : "default";
          const token = command[command.length - 1]!.toString();
          command[command.length - 1] = authenticate(user, token);
        } else if (name === "HELLO") {
          const at = command.findIndex(
            (arg, index) => index >= 2 && arg.toString("latin1").toUpperCase() === "AUTH",
          );
          if (at >= 0 && command.length >= at + 3) {
            command[at + 2] = authenticate(
              command[at + 1]!.toString(),
              command[at + 2]!.toString(),
            );
          }
        }
        upstream.write(encode(command));
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    port: address.port,
    url: `redis://127.0.0.1:${address.port}`,
    stats,
    resetStats() {
      stats.connections = 0;
      stats.authAccepted = 0;
      stats.authRefused = 0;
      stats.closedForExpiry = 0;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      server.close();
      await once(server, "close").catch(() => undefined);
    },
  };
}
