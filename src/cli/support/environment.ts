/**
 * The `AZURE_*` environment variables the Azure SDKs read, turned into a
 * `ClientSecretCredential` for the `token` and `watch` commands.
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { ClientSecretCredential } from "../../credential/index.js";
import {
  normalizeAuthorityHost,
  validateClientId,
  validateScopes,
  validateTenantId,
} from "../../credential/validation.js";
import { isRxIdentityError } from "../../errors/index.js";
import { UsageError } from "./args.js";

/**
 * The variables {@link credentialFromEnvironment} reads.
 *
 * @example
 * ```ts
 * const set = ENVIRONMENT_VARIABLES.filter((name) => process.env[name] !== undefined);
 * ```
 */
export const ENVIRONMENT_VARIABLES = [
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_SECRET_FILE",
  "AZURE_AUTHORITY_HOST",
  "AZURE_ADDITIONALLY_ALLOWED_TENANTS",
  "RX_IDENTITY_CA_FILE",
] as const;

/** Options of {@link credentialFromEnvironment}. */
export interface EnvironmentCredentialOptions {
  /**
   * The tenant, instead of `AZURE_TENANT_ID`.
   * @default process.env.AZURE_TENANT_ID
   */
  readonly tenantId?: string | undefined;
  /**
   * A PEM file of extra certificate authorities to trust for this credential only (the local
   * emulator's `caFile`), instead of `RX_IDENTITY_CA_FILE`. `NODE_EXTRA_CA_CERTS` works too,
   * for the whole process.
   * @default process.env.RX_IDENTITY_CA_FILE
   */
  readonly caFile?: string | undefined;
  /**
   * A file holding the client secret (`--secret-file`), instead of `AZURE_CLIENT_SECRET_FILE`
   * or `AZURE_CLIENT_SECRET`; followed as it changes (a rotated secret is used at once).
   * @default process.env.AZURE_CLIENT_SECRET_FILE
   */
  readonly secretFile?: string | undefined;
}

function isLoopbackHost(authorityHost: string): boolean {
  try {
    const { hostname } = new URL(authorityHost);
    return hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
  } catch {
    return false;
  }
}

/**
 * A credential from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (and
 * `AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS`), or a {@link UsageError}
 * naming every missing variable. The secret is read, never printed.
 *
 * @example
 * ```ts
 * const credential = await credentialFromEnvironment(process.env, { tenantId: "contoso.onmicrosoft.com" });
 * ```
 */
export async function credentialFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  options: EnvironmentCredentialOptions = {},
): Promise<ClientSecretCredential> {
  const tenantId = options.tenantId ?? env["AZURE_TENANT_ID"];
  const clientId = env["AZURE_CLIENT_ID"];
  const secretFile = options.secretFile || env["AZURE_CLIENT_SECRET_FILE"] || undefined;
  const clientSecret = env["AZURE_CLIENT_SECRET"];
  const missing = [
    tenantId ? undefined : "AZURE_TENANT_ID",
    clientId ? undefined : "AZURE_CLIENT_ID",
    clientSecret || secretFile ? undefined : "AZURE_CLIENT_SECRET",
  ].filter((name) => name !== undefined);
  if (missing.length > 0 || !tenantId || !clientId || !(clientSecret || secretFile)) {
    throw new UsageError(
      `missing environment variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: ` +
        "set them to a service principal (run `rx-identity emulator` for a local one)" +
        (clientSecret || secretFile ? "" : "; or pass --secret-file FILE"),
    );
  }
  if (secretFile !== undefined) await checkSecretFile(secretFile);

  // The credential validates these too; checked here first so the message names the flag or
  // variable the user typed, and the exit code is 2 like every other usage mistake.
  asUsage(() =>
    validateTenantId(tenantId, options.tenantId !== undefined ? "--tenant" : "AZURE_TENANT_ID"),
  );
  asUsage(() => validateClientId(clientId), ["clientId", "AZURE_CLIENT_ID"]);
  const authorityHost = env["AZURE_AUTHORITY_HOST"];
  if (authorityHost) {
    asUsage(() => normalizeAuthorityHost(authorityHost), ["authorityHost", "AZURE_AUTHORITY_HOST"]);
  }

  const caSource = options.caFile !== undefined ? "--ca-file" : "RX_IDENTITY_CA_FILE";
  const caFile = options.caFile ?? env["RX_IDENTITY_CA_FILE"];
  const ca = caFile ? await readCaFile(caSource, caFile) : undefined;

  const allowed = env["AZURE_ADDITIONALLY_ALLOWED_TENANTS"]
    ?.split(";")
    .map((tenant) => tenant.trim())
    .filter((tenant) => tenant !== "");
  // Loaded on demand so that --help and usage errors answer without loading MSAL.
  const { ClientSecretCredential, secretFromFile } = await import("../../credential/index.js");
  const secret = secretFile !== undefined ? secretFromFile(secretFile) : (clientSecret as string);
  return new ClientSecretCredential(tenantId, clientId, secret, {
    ...(authorityHost ? { authorityHost } : {}),
    ...(allowed && allowed.length > 0 ? { additionallyAllowedTenants: allowed } : {}),
    // A loopback authority is the local emulator: asking login.microsoftonline.com for
    // instance discovery of it fails offline (DESIGN.md, "Facts about the dependencies").
    ...(authorityHost && isLoopbackHost(authorityHost) ? { disableInstanceDiscovery: true } : {}),
    ...(ca === undefined ? {} : { ca }),
  });
}

/** A usage error now, rather than a failed token request, for a secret file that cannot serve. */
async function checkSecretFile(path: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UsageError(`cannot read the client secret file "${path}" (${reason})`);
  }
  if (text.trim() === "") throw new UsageError(`the client secret file "${path}" is empty`);
}

/** Runs a credential validator; its error becomes a {@link UsageError} (exit 2). */
function asUsage(check: () => unknown, rename?: readonly [string, string]): void {
  try {
    check();
  } catch (error) {
    if (!isRxIdentityError(error)) throw error;
    const message =
      rename === undefined ? error.message : error.message.replace(rename[0], rename[1]);
    throw new UsageError(message.replace(/^ClientSecretCredential: /, ""));
  }
}

/**
 * The scopes of `--scope`, trimmed, or a {@link UsageError} naming the one at fault: a
 * scope with a space is usually two scopes passed as one.
 *
 * @example
 * ```ts
 * checkScopes(["https://storage.azure.com/.default"]);
 * checkScopes(["a b"]); // throws: give each scope its own --scope
 * ```
 */
export function checkScopes(scopes: readonly string[]): string[] {
  return scopes.map((scope) => {
    if (/\s/.test(scope.trim())) {
      throw new UsageError(
        `--scope ${JSON.stringify(scope)} contains whitespace: give each scope its own --scope (--scope A --scope B)`,
      );
    }
    try {
      return validateScopes(scope)[0] as string;
    } catch (error) {
      if (!isRxIdentityError(error)) throw error;
      throw new UsageError(
        `--scope ${JSON.stringify(scope)} is not a scope: pass one such as https://storage.azure.com/.default`,
      );
    }
  });
}

/** The PEM certificates of a CA file, or a {@link UsageError} saying why there are none. */
async function readCaFile(source: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UsageError(
      `${source}: cannot read the CA file "${file}" (${reason})${reason === "ENOENT" ? ": if an emulator wrote it, that emulator has stopped (start it again and paste its variables)" : ""}`,
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new UsageError(
      `${source}: "${file}" holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block): give a PEM file of CA certificates, such as the CA file the emulator prints`,
    );
  }
  blocks.forEach((block, index) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new UsageError(
        `${source}: certificate ${index + 1} of ${blocks.length} in "${file}" is not a valid PEM certificate`,
      );
    }
  });
  return text;
}
