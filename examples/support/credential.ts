/**
 * How every example gets its credential: from the `AZURE_*` environment variables when they
 * are set, otherwise from the embedded Entra ID emulator, so each example runs with one
 * command and no Azure account.
 *
 * In your own code, import from the package instead: `import { ClientSecretCredential }
 * from "rx-identity"` and `import { startEntraEmulator } from "rx-identity/testing"`.
 */
import { randomBytes, randomUUID } from "node:crypto";
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
    const credential = new ClientSecretCredential(tenantFromEnv, clientIdFromEnv, secretFromEnv);
    const authorityHost = (
      env["AZURE_AUTHORITY_HOST"] ?? "https://login.microsoftonline.com"
    ).replace(/\/+$/, "");
    return {
      credential,
      tenantId: tenantFromEnv,
      authorityHost,
      emulator: undefined,
      async jwks() {
        const response = await fetch(`${authorityHost}/${tenantFromEnv}/discovery/v2.0/keys`);
        return (await response.json()) as { keys: Record<string, unknown>[] };
      },
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
