/**
 * A long-lived Redis client authenticated with Microsoft Entra ID tokens through
 * `redisCredentials`: it sends commands continuously while its tokens rotate, and every
 * connection re-authenticates before its token expires.
 *
 * Run it: `npx tsx examples/redis-entra/index.ts`. With no variables set it starts a local
 * `redis-server` behind a proxy that checks tokens as Azure does (signature, audience, user,
 * expiry; a connection whose token expired without a fresh AUTH is closed), and the embedded
 * Entra ID emulator issuing 4-second tokens. Against Azure Managed Redis or Azure Cache for
 * Redis, set `REDIS_URL` (`rediss://...`), `AZURE_REDIS_USERNAME` (the service principal's
 * object id) and `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { createClient } from "redis";
import { ClientSecretCredential } from "rx-identity";
import { REDIS_SCOPE, redisCredentials } from "rx-identity/redis";
import { startAzureLikeRedis } from "../../test/support/azure-redis.js";

/** Options of {@link main}. */
export interface RedisEntraOptions {
  /** Lifetime of the local emulator's tokens, in seconds. @default 4 */
  readonly lifetimeSeconds?: number;
  /** How long to send commands. @default 20_000 */
  readonly durationMs?: number;
  /** @default console.log */
  readonly log?: (line: string) => void;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What the run observed. */
export interface RedisEntraResult {
  readonly target: "local" | "azure";
  readonly commandsSent: number;
  readonly commandsFailed: number;
  readonly tokens: number;
  readonly reconnects: number;
  /** Seen by the local proxy; `undefined` against Azure. */
  readonly authAccepted: number | undefined;
  readonly closedForExpiry: number | undefined;
}

export async function main(options: RedisEntraOptions = {}): Promise<RedisEntraResult> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const durationMs = options.durationMs ?? 20_000;
  const lifetimeSeconds = options.lifetimeSeconds ?? 4;
  const azureTarget =
    env["REDIS_URL"] &&
    env["AZURE_REDIS_USERNAME"] &&
    env["AZURE_TENANT_ID"] &&
    env["AZURE_CLIENT_ID"] &&
    env["AZURE_CLIENT_SECRET"];

  const local = azureTarget ? undefined : await startAzureLikeRedis(lifetimeSeconds);
  const credential = local?.credential() ?? ClientSecretCredential.fromEnvironment({}, env);
  // Against Azure both are set (checked above).
  const url: string = local?.proxy.url ?? env["REDIS_URL"] ?? "";
  const username: string = local?.objectId ?? env["AZURE_REDIS_USERNAME"] ?? "";
  log(
    local
      ? `local redis-server behind an Azure-like token check, tokens living ${lifetimeSeconds} s`
      : `Azure Redis at ${new URL(url).host} as ${username}`,
  );

  let tokens = 0;
  const started = Date.now();
  const seconds = (): string => ((Date.now() - started) / 1000).toFixed(1);
  // Only to tell the story: the same engine key as the provider's, so no extra token requests.
  const rotations = credential.token$(REDIS_SCOPE).subscribe((token) => {
    tokens++;
    const left = Math.round((token.expiresOnTimestamp - Date.now()) / 1000);
    log(
      `${seconds()} s: token ${tokens} (expires in ${left} s): ${tokens === 1 ? "connecting with it" : "the connection re-authenticates"}`,
    );
  });
  const client = createClient({
    url,
    credentialsProvider: redisCredentials(credential, {
      username,
      onReAuthenticationError: (error) => log(`re-authentication failed: ${error.message}`),
    }),
  });
  let reconnects = 0;
  client.on("error", (error: Error) => log(`redis error: ${error.message}`));
  client.on("reconnecting", () => reconnects++);

  let commandsSent = 0;
  let commandsFailed = 0;
  try {
    await client.connect();
    const key = `rx-identity-example:${Date.now()}`;
    while (Date.now() - started < durationMs) {
      commandsSent++;
      await client.incr(key).catch(() => commandsFailed++);
      await sleep(10);
    }
    await client.del(key);
  } finally {
    rotations.unsubscribe();
    await client.close().catch(() => client.destroy());
    await credential.close();
    await local?.stop();
  }
  const result: RedisEntraResult = {
    target: local ? "local" : "azure",
    commandsSent,
    commandsFailed,
    tokens,
    reconnects,
    authAccepted: local?.proxy.stats.authAccepted,
    closedForExpiry: local?.proxy.stats.closedForExpiry,
  };
  log(
    `${seconds()} s: ${commandsSent} commands sent, ${commandsFailed} failed, ${tokens} tokens, ${reconnects} reconnects` +
      (local
        ? `, AUTH accepted ${result.authAccepted}, connections closed for expiry ${result.closedForExpiry}`
        : ""),
  );
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    (result) => process.exit(result.commandsFailed === 0 ? 0 : 1),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
