/**
 * A long-lived service that holds `credential.token$` for its whole life: it keeps the
 * `Authorization` header of its outgoing calls current and reacts to each rotation (here, a
 * log line). Its calls go to a small resource server on loopback that refuses expired or
 * wrong tokens, so a missed rotation would show up as a failed call.
 *
 * Run it: `npx tsx examples/long-lived-subscriber/index.ts` (embedded emulator, short tokens).
 */
import type { AccessToken } from "@azure/core-auth";
import { createServer, type Server } from "node:http";
import { pathToFileURL } from "node:url";
import type { Observable, Subscription } from "rxjs";
import { redactToken } from "../../src/cli/support/format.js";
import { exampleCredential, runExample } from "../support/credential.js";
import { verifyAccessToken } from "../support/jwt.js";

/**
 * Holds the newest token from a stream and tells the service about each rotation.
 *
 * @example
 * ```ts
 * const holder = new TokenHolder(credential.token$(scope), (token) => log("rotated"));
 * await holder.ready;
 * fetch(url, { headers: { authorization: holder.authorization } });
 * holder.stop();
 * ```
 */
export class TokenHolder {
  #current: AccessToken | undefined;
  readonly #subscription: Subscription;
  /** Resolves with the first token. */
  readonly ready: Promise<AccessToken>;
  /** Errors the stream reported (none while any usable token can be had). */
  errors = 0;

  constructor(
    tokens: Observable<AccessToken>,
    onRotation: (token: AccessToken, previous: AccessToken | undefined) => void,
  ) {
    let resolveReady: (token: AccessToken) => void = () => undefined;
    this.ready = new Promise((resolve) => (resolveReady = resolve));
    this.#subscription = tokens.subscribe({
      next: (token) => {
        const previous = this.#current;
        this.#current = token;
        onRotation(token, previous);
        resolveReady(token);
      },
      error: () => (this.errors += 1),
    });
  }

  /** `Bearer <token>` for the newest token. */
  get authorization(): string {
    if (this.#current === undefined) throw new Error("no token yet: await holder.ready first");
    return `Bearer ${this.#current.token}`;
  }

  stop(): void {
    this.#subscription.unsubscribe();
  }
}

/** Options of {@link main}. */
export interface LongLivedSubscriberOptions {
  /**
   * How long the service runs, in milliseconds.
   * @default 2.5 token lifetimes
   */
  readonly durationMs?: number;
  /**
   * Lifetime of the emulator's tokens, in seconds.
   * @default 3
   */
  readonly lifetimeSeconds?: number;
  /**
   * `refresh_in` of the emulator's tokens, in seconds.
   * @default 1
   */
  readonly refreshInSeconds?: number;
  /**
   * Milliseconds between two calls to the resource.
   * @default 100
   */
  readonly callIntervalMs?: number;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly log?: (line: string) => void;
}

/** What the service observed. */
export interface LongLivedSubscriberResult {
  /** Tokens the service received (the first one and every rotation). */
  readonly tokensReceived: number;
  readonly calls: number;
  /** Calls the resource refused. */
  readonly failedCalls: number;
  readonly streamErrors: number;
  /** Token requests the emulator answered (undefined against real Entra ID). */
  readonly tokenRequests: number | undefined;
}

const SCOPE = "https://storage.azure.com/.default";

/**
 * Runs the service for `durationMs`, then reports.
 *
 * @example
 * ```ts
 * const result = await main({ durationMs: 8_000 });
 * console.log(result.failedCalls); // 0
 * ```
 */
export async function main(
  options: LongLivedSubscriberOptions = {},
): Promise<LongLivedSubscriberResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const lifetimeSeconds = options.lifetimeSeconds ?? 3;
  const durationMs = options.durationMs ?? lifetimeSeconds * 2_500;
  const started = Date.now();
  const say = (text: string): void =>
    log(`[${((Date.now() - started) / 1_000).toFixed(1).padStart(5)}s] ${text}`);

  const example = await exampleCredential({
    lifetimeSeconds,
    refreshInSeconds: options.refreshInSeconds ?? 1,
  });
  const jwks = await example.jwks();
  // The protected resource: 200 for a valid token, 401 otherwise.
  const resource: Server = createServer((request, response) => {
    try {
      verifyAccessToken((request.headers.authorization ?? "").replace(/^Bearer /, ""), {
        jwks,
        audience: "https://storage.azure.com",
      });
      response.writeHead(200).end("ok");
    } catch {
      response.writeHead(401).end();
    }
  });
  await new Promise<void>((resolve) => resource.listen(0, "127.0.0.1", resolve));
  const address = resource.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/`;

  let tokensReceived = 0;
  let calls = 0;
  let failedCalls = 0;
  const holder = new TokenHolder(example.credential.token$(SCOPE), (token, previous) => {
    tokensReceived += 1;
    say(
      previous === undefined
        ? `first token ${redactToken(token.token)}`
        : `rotated to ${redactToken(token.token)} with ${((previous.expiresOnTimestamp - Date.now()) / 1_000).toFixed(1)}s left on the old one`,
    );
  });
  try {
    await holder.ready;
    while (Date.now() - started < durationMs) {
      calls += 1;
      const response = await fetch(url, { headers: { authorization: holder.authorization } });
      await response.arrayBuffer();
      if (response.status !== 200) failedCalls += 1;
      await new Promise((resolve) => setTimeout(resolve, options.callIntervalMs ?? 100));
    }
  } finally {
    holder.stop();
    await new Promise((resolve) => resource.close(resolve));
    resource.closeAllConnections();
    await example.close();
  }
  const tokenRequests = example.emulator?.requestCount();
  say(
    `done: ${tokensReceived} tokens, ${calls} calls, ${failedCalls} refused, ${tokenRequests ?? "?"} token requests`,
  );
  return { tokensReceived, calls, failedCalls, streamErrors: holder.errors, tokenRequests };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExample("long-lived-subscriber", async () => {
    const result = await main();
    return result.failedCalls === 0 && result.streamErrors === 0 ? 0 : 1;
  });
}
