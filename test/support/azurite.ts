/**
 * A real Azurite blob service for interop tests: `azurite-blob` as a child process on
 * 127.0.0.1, HTTPS with a certificate generated for this run, OAuth "basic" on, telemetry
 * off, in-memory persistence, in a temporary working directory.
 *
 * Why each flag (DESIGN.md "Facts about the dependencies"):
 * - `--oauth basic` makes Azurite check bearer tokens (`iat`/`nbf`/`exp` with no leeway,
 *   `iss` starting `https://sts.windows.net/`, `aud` `https://storage.azure.com`), and it only
 *   does so over HTTPS, hence `--cert`/`--key`.
 * - `--disableTelemetry`: otherwise Azurite phones home (`AzuriteTelemetryClient.init` in
 *   `azurite/dist/src/blob/main.js`).
 * - `--inMemoryPersistence` refuses `--location`, so the process runs with its working
 *   directory set to a fresh temporary directory, removed on stop.
 * - `--skipApiVersionCheck`: `@azure/storage-blob` 12.32 sends `x-ms-version: 2026-04-06`
 *   (`SERVICE_VERSION` in its `utils/constants.js`) while Azurite 3.35 knows versions up to
 *   `2025-11-05` (`ValidAPIVersions` in `azurite/dist/src/blob/utils/constants.js`) and would
 *   refuse every request with 400 otherwise.
 * - `--blobPort 0`: the OS picks a free port; Azurite prints the address it bound
 *   (`server.getHttpServerAddress()`), which is read back from its stdout.
 *
 * Nothing is left running: {@link RunningAzurite.stop} sends SIGTERM (Azurite closes its
 * server on it) and SIGKILL after a grace period; a `process.on("exit")` hook kills any child
 * still alive when the test process exits; and the child watches its stdin (a pipe from this
 * process) and exits when it closes, which also covers this process dying by SIGKILL.
 */
import type { TokenCredential } from "@azure/core-auth";
import type { TlsSettings } from "@azure/core-rest-pipeline";
import { BlobServiceClient, type StoragePipelineOptions } from "@azure/storage-blob";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { generate } from "selfsigned";

/** Options of {@link startAzurite}. */
export interface AzuriteOptions {
  /**
   * A PEM certificate and key to serve. Its certificate must name `127.0.0.1`.
   * @default a fresh self-signed certificate for `127.0.0.1`, generated with `selfsigned`
   */
  readonly tls?: { readonly cert: string; readonly key: string };
  /**
   * How long to wait for Azurite to report that it listens.
   * @default 20_000
   */
  readonly startTimeoutMs?: number;
}

/**
 * `@azure/storage-blob` pipeline options that trust one CA for one client only.
 *
 * `NODE_EXTRA_CA_CERTS` is read once at process start, so a test cannot use it for a
 * certificate generated at run time. What works per client, read in node_modules:
 * - `BlobServiceClient`'s constructor passes its `StoragePipelineOptions` to `newPipeline`,
 *   which keeps them whole as `pipeline.options`; `getCoreClientOptions` in
 *   `@azure/storage-blob/dist/commonjs/Pipeline.js` spreads everything but `httpClient` into
 *   `@azure/core-client`'s `createClientPipeline`, which calls `@azure/core-rest-pipeline`'s
 *   `createPipelineFromOptions`; that adds `tlsPolicy(options.tlsOptions)` when `tlsOptions`
 *   is set (`createPipelineFromOptions.js`, "if (options.tlsOptions)").
 * - `tlsPolicy` sets `request.tlsSettings`, and the default Node client
 *   (`@typespec/ts-http-runtime/dist/commonjs/nodeHttpClient.js`, `getOrCreateAgent`) builds
 *   a keep-alive `https.Agent` from `...tlsSettings`, cached per settings object, so the `ca`
 *   applies to this client's requests only.
 * `StoragePipelineOptions` does not declare `tlsOptions` (it is a subset of the core options),
 * hence the intersection type. The alternative, a custom v1 `httpClient`, would go through
 * `@azure/core-http-compat`'s request conversion both ways for no gain.
 */
export type TrustingPipelineOptions = StoragePipelineOptions & {
  readonly tlsOptions: TlsSettings;
};

/** A running Azurite blob service. */
export interface RunningAzurite {
  /** The blob endpoint of the emulator account, e.g. `https://127.0.0.1:41234/devstoreaccount1`. */
  readonly url: string;
  /** The port Azurite bound. */
  readonly port: number;
  /** The PEM certificate Azurite serves (self-signed: it is its own CA). */
  readonly caCertificate: string;
  /** Pipeline options that make a storage client trust {@link caCertificate}, for that client only. */
  readonly pipelineOptions: TrustingPipelineOptions;
  /** A `BlobServiceClient` for {@link url} that authenticates with `credential` and trusts the certificate. */
  blobServiceClient(credential: TokenCredential): BlobServiceClient;
  /** What Azurite printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Stops Azurite and removes its working directory. Idempotent. */
  stop(): Promise<void>;
}

type AzuriteChild = ChildProcessByStdio<Writable, Readable, Readable>;

const running = new Set<AzuriteChild>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // "exit" handlers must be synchronous: a SIGKILL is the one thing that cannot be waited on.
  process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

/**
 * Preloaded into the Azurite process (`node --require`): exit when stdin, a pipe from the
 * test process, reaches EOF, which happens however the test process dies.
 */
const WATCHDOG = `process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
`;

const LISTENING = /successfully listens on (https:\/\/127\.0\.0\.1:(\d+))/;

/** The account Azurite serves by default (`EMULATOR_ACCOUNT_NAME`). */
export const AZURITE_ACCOUNT = "devstoreaccount1";

async function selfSignedFor127(): Promise<{ cert: string; key: string }> {
  const now = Date.now();
  const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keyType: "ec",
    algorithm: "sha256",
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 24 * 3_600_000),
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Starts `azurite-blob` on 127.0.0.1 with HTTPS and OAuth "basic", and resolves once it listens.
 *
 * @example
 * ```ts
 * let azurite: RunningAzurite;
 * beforeAll(async () => { azurite = await startAzurite(); });
 * afterAll(() => azurite.stop());
 *
 * const service = azurite.blobServiceClient(credential);
 * await service.getContainerClient("container-one").create();
 * ```
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<RunningAzurite> {
  const { cert, key } = options.tls ?? (await selfSignedFor127());
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const workdir = await mkdtemp(join(tmpdir(), "rx-identity-azurite-"));
  await Promise.all([
    writeFile(join(workdir, "cert.pem"), cert),
    writeFile(join(workdir, "key.pem"), key),
    writeFile(join(workdir, "watchdog.cjs"), WATCHDOG),
  ]);

  const main = createRequire(import.meta.url).resolve("azurite/dist/src/blob/main.js");
  installExitHook();
  const child: AzuriteChild = spawn(
    process.execPath,
    [
      "--require",
      join(workdir, "watchdog.cjs"),
      main,
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      "0",
      "--oauth",
      "basic",
      "--cert",
      join(workdir, "cert.pem"),
      "--key",
      join(workdir, "key.pem"),
      "--inMemoryPersistence",
      "--disableTelemetry",
      "--skipApiVersionCheck",
      "--silent",
    ],
    { cwd: workdir, stdio: ["pipe", "pipe", "pipe"] },
  );
  running.add(child);

  let output = "";
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      running.delete(child);
      resolve();
    });
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const grace = setTimeout(() => child.kill("SIGKILL"), 3_000);
        await exited;
        clearTimeout(grace);
      }
      child.stdin.destroy();
      await rm(workdir, { recursive: true, force: true });
    })();
    return stopped;
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`Azurite did not listen within ${startTimeoutMs} ms:\n${output}`));
      }, startTimeoutMs);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString("utf8");
        const match = LISTENING.exec(output);
        if (match?.[2] !== undefined) {
          clearTimeout(timer);
          resolve(Number(match[2]));
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited (${signal ?? code}) before listening:\n${output}`));
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }

  const url = `https://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const pipelineOptions: TrustingPipelineOptions = {
    tlsOptions: { ca: cert },
    // The SDK's own retries would hide a failed operation from the test; the interop test
    // counts every failure, so the client fails fast instead.
    retryOptions: { maxTries: 1 },
  };
  return {
    url,
    port,
    caCertificate: cert,
    pipelineOptions,
    blobServiceClient: (credential) => new BlobServiceClient(url, credential, pipelineOptions),
    output: () => output,
    stop,
  };
}
