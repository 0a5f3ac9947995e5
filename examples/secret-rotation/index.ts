/**
 * Rotating a client secret with no restart: the secret lives in a file laid out as a
 * Kubernetes secret volume (`client-secret -> ..data/client-secret`, `..data` swapped
 * atomically by the kubelet), the credential follows it with `secretFromFile`, and a
 * long-lived `token$` subscriber keeps getting tokens while the secret is rotated several
 * times, each old secret revoked at the emulator right after the new one is mounted.
 *
 * Run it: `npx tsx examples/secret-rotation/index.ts` (embedded emulator, short tokens). It
 * exits 0 when the subscriber saw no error. It always runs against its own emulator, since it
 * adds and revokes secrets there; `AZURE_*` variables are not read.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { firstValueFrom, filter, skip } from "rxjs";
import { ClientSecretCredential, secretFromFile } from "rx-identity";
import { startEntraEmulator } from "rx-identity/testing";
import { runExample } from "../support/credential.js";

/** Options of {@link main}. */
export interface SecretRotationOptions {
  /** How many times the secret is rotated. @default 3 */
  readonly rotations?: number;
  /** Lifetime of the emulator's tokens, in seconds. @default 4 */
  readonly lifetimeSeconds?: number;
  /** `refresh_in` of the emulator's tokens, in seconds. @default 1 */
  readonly refreshInSeconds?: number;
  /** Where the lines go. @default console.log */
  readonly log?: (line: string) => void;
}

/** What the subscriber and the emulator saw. */
export interface SecretRotationResult {
  readonly rotations: number;
  readonly tokensReceived: number;
  readonly streamErrors: number;
  /** Token requests the emulator answered, and how many of them it refused (401). */
  readonly tokenRequests: number;
  readonly refusedRequests: number;
}

const scope = "https://storage.azure.com/.default";
const tenantId = "00000000-0000-4000-8000-0000000000e5";

/** Mounts `secret` the way the kubelet updates a secret volume: a new directory, `..data` swapped. */
async function mount(folder: string, secret: string, generation: number): Promise<void> {
  const version = `..${new Date().toISOString().replace(/[:.]/g, "_")}.${generation}`;
  await mkdir(join(folder, version));
  await writeFile(join(folder, version, "client-secret"), `${secret}\n`);
  await symlink(version, join(folder, "..data_tmp"));
  await rename(join(folder, "..data_tmp"), join(folder, "..data"));
}

/**
 * Runs the rotation and returns what was seen.
 *
 * @example
 * ```ts
 * const { streamErrors } = await main({ rotations: 2 });
 * ```
 */
export async function main(options: SecretRotationOptions = {}): Promise<SecretRotationResult> {
  const rotations = options.rotations ?? 3;
  const log = options.log ?? ((line: string) => console.log(line));
  const emulator = await startEntraEmulator({
    tokenLifetimeSeconds: options.lifetimeSeconds ?? 4,
    refreshInSeconds: options.refreshInSeconds ?? 1,
  });
  const folder = await mkdtemp(join(tmpdir(), "rx-identity-secret-volume-"));
  const clientId = randomUUID();
  const newSecret = (): string => randomBytes(24).toString("base64url");
  let current = newSecret();
  emulator.registerApplication({ clientId, clientSecret: current });
  await mount(folder, current, 0);
  await symlink(join("..data", "client-secret"), join(folder, "client-secret"));
  const secretFile = join(folder, "client-secret");

  const credential = new ClientSecretCredential(
    tenantId,
    clientId,
    secretFromFile(secretFile, { debounceMs: 50 }),
    { authorityHost: emulator.authorityHost, ca: emulator.caCertificate },
  );
  let tokensReceived = 0;
  let streamErrors = 0;
  const subscription = credential.token$(scope).subscribe({
    next: (token) => {
      tokensReceived += 1;
      log(`token #${tokensReceived} expires ${new Date(token.expiresOnTimestamp).toISOString()}`);
    },
    error: (error: unknown) => {
      streamErrors += 1;
      log(`stream error: ${error instanceof Error ? error.message : String(error)}`);
    },
  });
  // A second reader of the same file, to know when a mounted secret is visible.
  const mounted = secretFromFile(secretFile, { debounceMs: 50 });
  try {
    await firstValueFrom(credential.token$(scope));
    for (let rotation = 1; rotation <= rotations; rotation += 1) {
      const previous = current;
      current = newSecret();
      emulator.addClientSecret(clientId, current);
      const seen = firstValueFrom(mounted.pipe(filter((value) => value === current)));
      await mount(folder, current, rotation);
      await seen;
      // Give the credential's own watcher its debounce, then revoke the old secret. Were the
      // old one revoked first, the refresh it refused would be retried at once with the new
      // secret as soon as that arrives: the subscriber would still see no error.
      await new Promise((resolve) => setTimeout(resolve, 150));
      emulator.revokeClientSecret(clientId, previous);
      log(`rotation ${rotation}: new secret mounted, old secret revoked`);
      // Two refreshes after the revocation: both with the new secret.
      await firstValueFrom(credential.token$(scope).pipe(skip(2)));
    }
  } finally {
    subscription.unsubscribe();
    await credential.close();
    await emulator.stop();
    await rm(folder, { recursive: true, force: true });
  }
  const result: SecretRotationResult = {
    rotations,
    tokensReceived,
    streamErrors,
    tokenRequests: emulator.requestCount({ clientId }),
    refusedRequests: emulator.requestCount({ clientId, status: 401 }),
  };
  log(
    `secret-rotation: ${result.tokensReceived} tokens across ${rotations} rotations, ${result.streamErrors} errors; the emulator answered ${result.tokenRequests} token requests, ${result.refusedRequests} refused`,
  );
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExample("secret-rotation", async () => {
    const result = await main();
    return result.streamErrors === 0 ? 0 : 1;
  });
}
