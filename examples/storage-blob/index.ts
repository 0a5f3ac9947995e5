/**
 * An Azure SDK client using rx-identity: `@azure/storage-blob`'s `BlobServiceClient` with
 * `ClientSecretCredential` as its `TokenCredential`, creating a container, uploading,
 * downloading and listing blobs.
 *
 * Run it: `npx tsx examples/storage-blob/index.ts`. Without `AZURE_*` variables it starts
 * the embedded Entra ID emulator and a local Azurite (HTTPS, OAuth checking on); with them,
 * set `AZURE_STORAGE_ACCOUNT_URL` (e.g. `https://myaccount.blob.core.windows.net`) to your
 * account, whose service principal needs the "Storage Blob Data Contributor" role.
 */
import { BlobServiceClient, type StoragePipelineOptions } from "@azure/storage-blob";
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { exampleCredential, runExample } from "../support/credential.js";

/** Options of {@link main}. */
export interface StorageBlobOptions {
  /** The blob endpoint, e.g. `https://myaccount.blob.core.windows.net`. */
  readonly accountUrl: string;
  /**
   * Pipeline options of the storage client (the test passes Azurite's certificate trust).
   * @default {}
   */
  readonly pipelineOptions?: StoragePipelineOptions;
  /**
   * Keep uploading, downloading and listing for this long, in milliseconds, across token
   * rotations.
   * @default 0 (one round)
   */
  readonly durationMs?: number;
  /**
   * Lifetime of the emulator's tokens, in seconds.
   * @default 60
   */
  readonly lifetimeSeconds?: number;
  /**
   * `refresh_in` of the emulator's tokens, in seconds.
   * @default half the lifetime
   */
  readonly refreshInSeconds?: number;
  /**
   * Where progress lines go.
   * @default console.log
   */
  readonly log?: (line: string) => void;
}

/** What the run did. */
export interface StorageBlobResult {
  readonly container: string;
  readonly uploads: number;
  /** Downloads whose content matched what was uploaded. */
  readonly verifiedDownloads: number;
  /** Blobs listed at the end. */
  readonly listed: readonly string[];
  /** Token requests the emulator answered (undefined against real Entra ID). */
  readonly tokenRequests: number | undefined;
}

/**
 * Creates a container and uploads, downloads and lists blobs through a credential-backed client.
 *
 * @example
 * ```ts
 * const result = await main({ accountUrl: "https://myaccount.blob.core.windows.net" });
 * console.log(result.listed);
 * ```
 */
export async function main(options: StorageBlobOptions): Promise<StorageBlobResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const example = await exampleCredential({
    lifetimeSeconds: options.lifetimeSeconds ?? 60,
    ...(options.refreshInSeconds === undefined
      ? {}
      : { refreshInSeconds: options.refreshInSeconds }),
  });
  try {
    // The credential is a drop-in TokenCredential: the SDK asks it for a token (with CAE)
    // before each request and gets the cached one until it is due for refresh.
    const service = new BlobServiceClient(
      options.accountUrl,
      example.credential,
      options.pipelineOptions ?? {},
    );
    const container = service.getContainerClient(`rx-identity-${randomUUID().slice(0, 8)}`);
    await container.create();
    log(`created container ${container.containerName}`);

    const started = Date.now();
    let uploads = 0;
    let verifiedDownloads = 0;
    do {
      const content = `hello from rx-identity #${uploads + 1} at ${new Date().toISOString()}`;
      const blob = container.getBlockBlobClient(`greeting-${uploads + 1}.txt`);
      await blob.upload(content, Buffer.byteLength(content));
      uploads += 1;
      const downloaded = (await blob.downloadToBuffer()).toString("utf8");
      if (downloaded === content) verifiedDownloads += 1;
      log(
        `uploaded and downloaded ${blob.name} (${downloaded === content ? "content matches" : "CONTENT DIFFERS"})`,
      );
      if (Date.now() - started < (options.durationMs ?? 0))
        await new Promise((resolve) => setTimeout(resolve, 250));
    } while (Date.now() - started < (options.durationMs ?? 0));

    const listed: string[] = [];
    for await (const item of container.listBlobsFlat()) listed.push(item.name);
    log(`listed ${listed.length} blobs: ${listed.join(", ")}`);
    const tokenRequests = example.emulator?.requestCount();
    if (tokenRequests !== undefined) {
      // create + an upload and a download per round + list
      log(
        `the emulator answered ${tokenRequests} token requests for ${2 + uploads * 2} storage calls`,
      );
    }
    return {
      container: container.containerName,
      uploads,
      verifiedDownloads,
      listed,
      tokenRequests,
    };
  } finally {
    await example.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runExample("storage-blob", async () => {
    const accountUrl = process.env["AZURE_STORAGE_ACCOUNT_URL"];
    if (accountUrl !== undefined) {
      await main({ accountUrl });
    } else {
      // Standalone: a local Azurite with OAuth checking on (the test suite's helper, which
      // generates a certificate and trusts it for this client only).
      const { startAzurite } = await import("../../test/support/azurite.js");
      const azurite = await startAzurite();
      try {
        await main({ accountUrl: azurite.url, pipelineOptions: azurite.pipelineOptions });
      } finally {
        await azurite.stop();
      }
    }
    return 0;
  });
}
