/**
 * A websocket client that keeps one connection authenticated for as long as it runs: it
 * connects with the first token from `token$`, then presents every refreshed token in-band
 * (`{ "type": "token" }`) long before the previous one expires, so the server never closes
 * the connection for expiry and no message is lost.
 *
 * `rotateOnNewValue` (from `src/operators`) gives the make-before-break order: the previous
 * token stays the connection's current one until the server has accepted the new one, and
 * a newer token that arrives first replaces a presentation still pending.
 */
import type { AccessToken } from "@azure/core-auth";
import { Observable, type Subscription } from "rxjs";
import { WebSocket, type RawData } from "ws";
import { rotateOnNewValue } from "rx-identity";
import { rawDataToString } from "./server.js";

/** Something that happened to the connection, for logs and tests. */
export type ClientEvent =
  | { readonly type: "connected"; readonly exp: number }
  | { readonly type: "token-accepted"; readonly exp: number };

/**
 * A connection kept authenticated by a token stream.
 *
 * @example
 * ```ts
 * const client = new RotatingTokenClient("ws://127.0.0.1:8080", credential.token$(scope));
 * await client.start();
 * await client.send("hello"); // resolves on the server's ack
 * client.close();
 * ```
 */
export class RotatingTokenClient {
  #socket: WebSocket | undefined;
  #subscription: Subscription | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, () => void>();
  /** Close codes the server sent, in order. */
  readonly closeCodes: number[] = [];

  /**
   * @param url - the server's `ws://` or `wss://` URL
   * @param tokens - the token stream, typically `credential.token$(scope)`
   * @param onEvent - called on connect and on each accepted rotation
   */
  constructor(
    private readonly url: string,
    private readonly tokens: Observable<AccessToken>,
    private readonly onEvent: (event: ClientEvent) => void = () => undefined,
  ) {}

  /**
   * Connects and keeps presenting new tokens; resolves once connected.
   *
   * @example
   * ```ts
   * const client = new RotatingTokenClient(url, credential.token$(scope));
   * await client.start();
   * await client.send("hello");
   * client.close();
   * ```
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#subscription = this.tokens
        .pipe(rotateOnNewValue((token) => this.#present(token)))
        .subscribe({
          next: (event) => {
            this.onEvent(event);
            if (event.type === "connected") resolve();
          },
          error: (error: unknown) =>
            reject(error instanceof Error ? error : new Error("token$ failed", { cause: error })),
        });
    });
  }

  /** Sends a message and resolves when the server acknowledges it. */
  send(body: string): Promise<void> {
    const socket = this.#socket;
    if (socket?.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    const id = ++this.#nextId;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      socket.send(JSON.stringify({ type: "message", id, body }));
    });
  }

  /** Messages sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.#pending.size;
  }

  /** Stops rotating and closes the connection normally. */
  close(): void {
    this.#subscription?.unsubscribe();
    this.#socket?.close(1000, "done");
  }

  /**
   * One token's "session": the first token opens the connection; each later one is sent
   * in-band. Emits once when the server has the token, then stays open until replaced.
   */
  #present(token: AccessToken): Observable<ClientEvent> {
    return new Observable<ClientEvent>((subscriber) => {
      const socket = this.#socket;
      if (
        socket === undefined ||
        socket.readyState === WebSocket.CLOSED ||
        socket.readyState === WebSocket.CLOSING
      ) {
        const fresh = new WebSocket(this.url, {
          headers: { authorization: `Bearer ${token.token}` },
        });
        this.#socket = fresh;
        fresh.on("open", () =>
          subscriber.next({ type: "connected", exp: Math.floor(token.expiresOnTimestamp / 1_000) }),
        );
        fresh.on("message", (data) => this.#onMessage(rawDataToString(data)));
        fresh.on("close", (code) => this.closeCodes.push(code));
        fresh.on("error", (error) => subscriber.error(error));
        return;
      }
      // Only the server's answer to this presentation counts: listen until it comes.
      const onMessage = (data: RawData): void => {
        const message = JSON.parse(rawDataToString(data)) as { type?: string; exp?: number };
        if (message.type !== "token-accepted") return;
        socket.off("message", onMessage);
        subscriber.next({ type: "token-accepted", exp: message.exp ?? 0 });
      };
      socket.on("message", onMessage);
      socket.send(JSON.stringify({ type: "token", token: token.token }));
      return () => socket.off("message", onMessage);
    });
  }

  #onMessage(data: string): void {
    const message = JSON.parse(data) as { type?: string; id?: number };
    if (message.type === "ack" && typeof message.id === "number") {
      this.#pending.get(message.id)?.();
      this.#pending.delete(message.id);
    }
  }
}
