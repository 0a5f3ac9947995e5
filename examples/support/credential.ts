/**
 * How every example gets its credential: from the `AZURE_*` environment variables when they
 * are set, otherwise from the embedded Entra ID emulator, so each example runs with one
 * command and no Azure account.
 *
 * In your own code, import from the package instead: `import { ClientSecretCredential }
 * from "rx-identity"` and `import { startEntraEmulator } from "rx-identity/testing"`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { get } from "node:https";
import { connect } from "node:net";
import { ClientSecretCredential } from "rx-identity";
import { startEntraEmulator, type EntraEmulator } from "rx-identity/testing";

/** Options of {@link exampleCredential}. */
export interface ExampleCredentialOptions {
  /**
   * Lifetime of the emulator's tokens, in seconds (ignored with real credentials).
   * @default 60
   */
  readonly lifetimeSeconds?: number;
  /**
   * `refresh_in` of the emulator's tokens, in seconds (ignored with real credentials).
   * @default half the lifetime
   */
  readonly refreshInSeconds?: number;
  /**
   * Where `AZURE_*` variables are read.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** A credential for an example, and what it runs against. */
export interface ExampleCredential {
  readonly credential: ClientSecretCredential;
  readonly tenantId: string;
  /** The token issuer's authority host, e.g. `https://127.0.0.1:PORT` for the emulator. */
  readonly authorityHost: string;
  /** The embedded emulator, when no `AZURE_*` variables were set. */
  readonly emulator: EntraEmulator | undefined;
  /** The JSON Web Key Set that verifies the tokens (the emulator's, or fetched from the authority). */
  jwks(): Promise<{ readonly keys: readonly Record<string, unknown>[] }>;
  /** Closes the credential and stops the emulator, if any. */
  close(): Promise<void>;
}

/**
 * The `AZURE_*` credential, or the embedded emulator's when `AZURE_TENANT_ID`,
 * `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` are not all set.
 *
 * @example
 * ```ts
 * const { credential, close } = await exampleCredential({ lifetimeSeconds: 10 });
 * try { await credential.getToken("https://storage.azure.com/.default"); } finally { await close(); }
 * ```
 */
export async function exampleCredential(
  options: ExampleCredentialOptions = {},
): Promise<ExampleCredential> {
  const env = options.env ?? process.env;
  const tenantFromEnv = env["AZURE_TENANT_ID"];
  const clientIdFromEnv = env["AZURE_CLIENT_ID"];
  const secretFromEnv = env["AZURE_CLIENT_SECRET"];
  if (tenantFromEnv && clientIdFromEnv && secretFromEnv) {
    const authorityHost = (
      env["AZURE_AUTHORITY_HOST"] ?? "https://login.microsoftonline.com"
    ).replace(/\/+$/, "");
    // Variables pasted from an emulator that has stopped since: say so at once, in one line,
    // rather than retry a refused connection for 20 s.
    const ca = await readCa(env);
    await expectListening(authorityHost);
    const credential = new ClientSecretCredential(tenantFromEnv, clientIdFromEnv, secretFromEnv, {
      ...(ca === undefined ? {} : { ca }),
    });
    return {
      credential,
      tenantId: tenantFromEnv,
      authorityHost,
      emulator: undefined,
      jwks: () => getJson(`${authorityHost}/${tenantFromEnv}/discovery/v2.0/keys`, ca),
      close: () => credential.close(),
    };
  }

  const lifetimeSeconds = options.lifetimeSeconds ?? 60;
  const emulator = await startEntraEmulator({
    tokenLifetimeSeconds: lifetimeSeconds,
    refreshInSeconds: options.refreshInSeconds ?? Math.max(1, Math.floor(lifetimeSeconds / 2)),
  });
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = randomBytes(24).toString("base64url");
  emulator.registerApplication({ clientId, clientSecret });
  const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
    authorityHost: emulator.authorityHost,
    // Trust the emulator's self-signed certificate for this credential only.
    ca: emulator.caCertificate,
    disableInstanceDiscovery: true,
  });
  return {
    credential,
    tenantId,
    authorityHost: emulator.authorityHost,
    emulator,
    jwks: () => Promise.resolve(emulator.jwks),
    async close() {
      await credential.close();
      await emulator.stop();
    },
  };
}

const stopped =
  "the emulator that printed these variables has stopped: start it again and paste what it prints, or unset the AZURE_* variables to run against an embedded emulator";

/** `RX_IDENTITY_CA_FILE`'s certificates (as the CLI reads it), or why they cannot be read. */
async function readCa(
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | undefined> {
  const extra = env["NODE_EXTRA_CA_CERTS"];
  if (extra && !existsSync(extra))
    throw new Error(`NODE_EXTRA_CA_CERTS=${extra} is gone: ${stopped}`);
  const file = env["RX_IDENTITY_CA_FILE"];
  if (!file) return undefined;
  try {
    return await readFile(file, "utf8");
  } catch {
    throw new Error(`RX_IDENTITY_CA_FILE=${file} is gone: ${stopped}`);
  }
}

/** For a loopback authority (the emulator), that something listens there. */
async function expectListening(authorityHost: string): Promise<void> {
  const { hostname, port } = new URL(authorityHost);
  if (hostname !== "127.0.0.1" && hostname !== "localhost" && hostname !== "[::1]") return;
  const open = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(port || 443), hostname.replace(/^\[|\]$/g, ""));
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
  if (!open)
    throw new Error(`nothing listens at AZURE_AUTHORITY_HOST=${authorityHost}: ${stopped}`);
}

/** GETs JSON over HTTPS, trusting `ca` too. */
function getJson(
  url: string,
  ca: string | undefined,
): Promise<{ keys: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    get(url, ca === undefined ? {} : { ca }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        try {
          resolve(JSON.parse(body) as { keys: Record<string, unknown>[] });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }).on("error", reject);
  });
}

/**
 * Runs an example's entry point: a failure ends it with one line on stderr and exit code 1,
 * not a stack trace.
 *
 * @example
 * ```ts
 * await runExample("long-lived-subscriber", async () => ((await main()).failedCalls === 0 ? 0 : 1));
 * ```
 */
export async function runExample(name: string, run: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name}: ${message.split(/\r?\n/)[0] ?? message}\n`);
    process.exitCode = 1;
  }
}
