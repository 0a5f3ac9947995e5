/**
 * Websocket token rotation: a server that closes any connection whose token expires, and a
 * client that keeps its connection alive across token lifetimes by presenting each new
 * token from `credential.token$` in-band before the old one expires.
 *
 * Run it: `npx tsx examples/websocket-rotation/index.ts` (embedded emulator, 3-second tokens)
 * or with `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` set (real Entra ID;
 * then pass a longer `--duration`, since real tokens live about an hour).
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { redactToken } from "../../src/cli/support/format.js";
import { exampleCredential, runExample } from "../support/credential.js";
import { RotatingTokenClient } from "./client.js";
import { startTokenCheckingServer, type ServerStats } from "./server.js";

/** Options of {@link main}. */
export interface WebsocketRotationOptions {
  /**
   * How long to send messages, in milliseconds.
   * @default 3.5 token lifetimes
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
   * Milliseconds between two messages.
   * @default 50
   */
  readonly messageIntervalMs?: number;
  /**
   * The scope (and so the audience the server expects).
   * @default "https://storage.azure.com/.default"
   */
  readonly scope?: string;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly log?: (line: string) => void;
}

/** What the run observed. */
export interface WebsocketRotationResult {
  readonly messagesSent: number;
  readonly messagesAcknowledged: number;
  /** Tokens presented and accepted in-band after the first. */
  readonly rotations: number;
  /** Close codes the client received before it closed itself (none expected). */
  readonly closeCodes: readonly number[];
  readonly server: Readonly<ServerStats>;
}

/**
 * Runs the server and the client for `durationMs`, then reports.
 *
 * @example
 * ```ts
 * const result = await main({ lifetimeSeconds: 3, refreshInSeconds: 1 });
 * console.log(result.server.closedForExpiry); // 0
 * ```
 */
export async function main(
  options: WebsocketRotationOptions = {},
): Promise<WebsocketRotationResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const lifetimeSeconds = options.lifetimeSeconds ?? 3;
  const durationMs = options.durationMs ?? lifetimeSeconds * 3_500;
  const scope = options.scope ?? "https://storage.azure.com/.default";
  const audience = scope.replace(/\/\.default$/, "");
  const started = Date.now();
  const say = (text: string): void =>
    log(`[${((Date.now() - started) / 1_000).toFixed(1).padStart(5)}s] ${text}`);

  const example = await exampleCredential({
    lifetimeSeconds,
    refreshInSeconds: options.refreshInSeconds ?? 1,
  });
  const server = await startTokenCheckingServer({ jwks: await example.jwks(), audience });
  let rotations = 0;
  const tokens = example.credential.token$(scope);
  const client = new RotatingTokenClient(server.url, tokens, (event) => {
    if (event.type === "token-accepted") rotations += 1;
    say(
      `${event.type === "connected" ? "connected with a token" : "server accepted a new token"}, valid until ${new Date(event.exp * 1_000).toISOString()}`,
    );
  });
  const logTokens = tokens.subscribe((token) => say(`token$ emitted ${redactToken(token.token)}`));

  let sent = 0;
  let acknowledged = 0;
  let closeCodes: readonly number[] = [];
  try {
    await client.start();
    say(
      `sending a message every ${options.messageIntervalMs ?? 50}ms for ${(durationMs / 1_000).toFixed(1)}s`,
    );
    const acks: Promise<void>[] = [];
    while (Date.now() - started < durationMs) {
      sent += 1;
      acks.push(client.send(`message ${sent}`).then(() => void (acknowledged += 1)));
      await new Promise((resolve) => setTimeout(resolve, options.messageIntervalMs ?? 50));
    }
    // Every message sent while the connection was up must come back acknowledged.
    await Promise.race([Promise.all(acks), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  } finally {
    logTokens.unsubscribe();
    closeCodes = [...client.closeCodes];
    client.close();
    await server.close();
    await example.close();
    say(
      `done: ${sent} sent, ${acknowledged} acknowledged, ${rotations} in-band rotations, ` +
        `${server.stats.closedForExpiry} connections closed for expiry, close codes before shutdown: [${closeCodes.join(", ")}]`,
    );
  }
  return {
    messagesSent: sent,
    messagesAcknowledged: acknowledged,
    rotations,
    closeCodes,
    server: { ...server.stats },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { duration: { type: "string" } } });
  await runExample("websocket-rotation", async () => {
    const outcome = await main(
      values.duration === undefined ? {} : { durationMs: Number(values.duration) * 1_000 },
    );
    return outcome.server.closedForExpiry === 0 &&
      outcome.messagesSent === outcome.messagesAcknowledged
      ? 0
      : 1;
  });
}
