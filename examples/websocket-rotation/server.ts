/**
 * A websocket server that accepts a bearer token on connect (`Authorization` header),
 * verifies it, and closes the connection (code 4001) the moment that token expires unless the
 * client presents a fresh one in-band: `{ "type": "token", "token": "..." }`.
 * It acknowledges every `{ "type": "message", "id": n }` with `{ "type": "ack", "id": n }`.
 */
import type { IncomingMessage } from "node:http";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { verifyAccessToken, type VerifyOptions } from "../support/jwt.js";

/**
 * The text of a websocket message, whichever buffer shape `ws` delivered it in.
 *
 * @example
 * ```ts
 * socket.on("message", (data) => JSON.parse(rawDataToString(data)));
 * ```
 */
export function rawDataToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return (data instanceof ArrayBuffer ? Buffer.from(data) : data).toString("utf8");
}

/**
 * Close code for a connection whose token expired.
 *
 * @example
 * ```ts
 * socket.on("close", (code) => code === CLOSE_TOKEN_EXPIRED && reconnect());
 * ```
 */
export const CLOSE_TOKEN_EXPIRED = 4001;
/**
 * Close code for a connection that presented an invalid token in-band.
 *
 * @example
 * ```ts
 * socket.on("close", (code) => code === CLOSE_TOKEN_INVALID && alert("token refused"));
 * ```
 */
export const CLOSE_TOKEN_INVALID = 4003;

/** What the server counted. */
export interface ServerStats {
  connections: number;
  /** Connections refused at the handshake (401). */
  rejectedHandshakes: number;
  /** Tokens accepted in-band on an open connection. */
  tokensRotated: number;
  messages: number;
  closedForExpiry: number;
  closedForInvalidToken: number;
}

/** A running token-checking websocket server. */
export interface TokenCheckingServer {
  /** `ws://127.0.0.1:PORT`. */
  readonly url: string;
  readonly stats: Readonly<ServerStats>;
  close(): Promise<void>;
}

/**
 * Starts the server on 127.0.0.1.
 *
 * @example
 * ```ts
 * const server = await startTokenCheckingServer({ jwks, audience: "https://storage.azure.com" });
 * ```
 */
export async function startTokenCheckingServer(
  options: VerifyOptions & {
    /**
     * TCP port.
     * @default 0 (a free one)
     */
    readonly port?: number;
  },
): Promise<TokenCheckingServer> {
  const stats: ServerStats = {
    connections: 0,
    rejectedHandshakes: 0,
    tokensRotated: 0,
    messages: 0,
    closedForExpiry: 0,
    closedForInvalidToken: 0,
  };
  const expiry = new WeakMap<WebSocket, NodeJS.Timeout>();
  const subjects = new WeakMap<WebSocket, unknown>();
  const now = options.now ?? Date.now;

  // Close the connection when its current token expires (exp is in whole seconds).
  const armExpiry = (socket: WebSocket, exp: number): void => {
    clearTimeout(expiry.get(socket));
    expiry.set(
      socket,
      setTimeout(
        () => {
          stats.closedForExpiry += 1;
          socket.close(CLOSE_TOKEN_EXPIRED, "token expired");
        },
        Math.max(0, exp * 1_000 - now()),
      ),
    );
  };

  const server = new WebSocketServer({
    host: "127.0.0.1",
    port: options.port ?? 0,
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const header = info.req.headers.authorization ?? "";
      try {
        const claims = verifyAccessToken(header.replace(/^Bearer /i, ""), options);
        (info.req as IncomingMessage & { claims?: typeof claims }).claims = claims;
        done(true);
      } catch {
        stats.rejectedHandshakes += 1;
        done(false, 401);
      }
    },
  });

  server.on(
    "connection",
    (socket, request: IncomingMessage & { claims?: Record<string, unknown> & { exp: number } }) => {
      stats.connections += 1;
      const claims = request.claims!;
      subjects.set(socket, claims["oid"]);
      armExpiry(socket, claims.exp);
      socket.on("close", () => clearTimeout(expiry.get(socket)));
      socket.on("message", (data) => {
        let message: { type?: unknown; token?: unknown; id?: unknown };
        try {
          message = JSON.parse(rawDataToString(data)) as typeof message;
        } catch {
          return;
        }
        if (message.type === "token" && typeof message.token === "string") {
          try {
            const fresh = verifyAccessToken(message.token, options);
            // A connection keeps its identity: a token for another principal is refused.
            if (fresh["oid"] !== subjects.get(socket)) throw new Error("another principal");
            stats.tokensRotated += 1;
            armExpiry(socket, fresh.exp);
            socket.send(JSON.stringify({ type: "token-accepted", exp: fresh.exp }));
          } catch {
            stats.closedForInvalidToken += 1;
            socket.close(CLOSE_TOKEN_INVALID, "invalid token");
          }
        } else if (message.type === "message") {
          stats.messages += 1;
          socket.send(JSON.stringify({ type: "ack", id: message.id }));
        }
      });
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `ws://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
