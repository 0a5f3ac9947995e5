/**
 * The interop proof: the real `@azure/storage-blob` `BlobServiceClient`, authenticated by our
 * `ClientSecretCredential`, against a real Azurite with its OAuth check on, while the Entra ID
 * emulator issues tokens that live a few seconds.
 *
 * This file runs on the wall clock on purpose: Azurite checks `iat`/`nbf`/`exp` against
 * `Date.now()` with no leeway, so virtual time cannot prove anything here. Lifetimes are
 * short (6 s, `refresh_in` 2 s) so three rotations take about 7 s; nothing asserts timing.
 */
import { isTokenCredential, type AccessToken, type TokenCredential } from "@azure/core-auth";
import { RestError, type BlobServiceClient } from "@azure/storage-blob";
import { randomUUID } from "node:crypto";
import { setTimeout as pause } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startAzurite, type RunningAzurite } from "../support/azurite.js";

const TENANT = "6f3c1b2a-4d5e-4f60-8a9b-0c1d2e3f4a5b";
const CLIENT_ID = "0b7e9c1d-2f3a-4b5c-9d8e-7f6a5b4c3d2e";
const CLIENT_SECRET = `interop-secret-${randomUUID()}`;
const STORAGE_SCOPE = "https://storage.azure.com/.default";
const TOKEN_LIFETIME_SECONDS = 6;
const REFRESH_IN_SECONDS = 2;
/** The initial token plus three rotations. */
const TOKENS_WANTED = 4;

let emulator: EntraEmulator;
let azurite: RunningAzurite;

beforeAll(async () => {
  // allSettled, so that when one fails to start the other is still assigned and stopped.
  const [emulatorStart, azuriteStart] = await Promise.allSettled([
    startEntraEmulator(),
    startAzurite(),
  ]);
  if (emulatorStart.status === "fulfilled") emulator = emulatorStart.value;
  if (azuriteStart.status === "fulfilled") azurite = azuriteStart.value;
  if (emulatorStart.status === "rejected") throw emulatorStart.reason;
  if (azuriteStart.status === "rejected") throw azuriteStart.reason;
  emulator.registerApplication({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    tenants: [TENANT],
    tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS,
    refreshInSeconds: REFRESH_IN_SECONDS,
  });
});

afterAll(async () => {
  await Promise.all([emulator?.stop(), azurite?.stop()]);
});

/** A `TokenCredential` that always presents `token`, claiming it is good for an hour. */
function presenting(token: string): TokenCredential {
  return {
    getToken: (): Promise<AccessToken> =>
      Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000, tokenType: "Bearer" }),
  };
}

/** What a storage call failed with, as Azurite reported it; `{}` when it succeeded. */
interface StorageFailure {
  readonly status?: number | undefined;
  readonly code?: string | undefined;
  /** Azurite's `AuthenticationErrorDetail`, which says which check refused the token. */
  readonly detail?: unknown;
}

async function failureOf(call: Promise<unknown>): Promise<StorageFailure> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof RestError)) throw error;
    const details = error.details as { authenticationErrorDetail?: string } | undefined;
    return {
      status: error.statusCode,
      code: error.code,
      detail: details?.authenticationErrorDetail,
    };
  }
  return {};
}

function describeFailure(error: unknown): string {
  if (error instanceof RestError) {
    const details = error.details as { authenticationErrorDetail?: string } | undefined;
    return `${error.statusCode ?? "no status"} ${error.code ?? ""} ${details?.authenticationErrorDetail ?? ""}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function uniqueContainerName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

describe("BlobServiceClient with ClientSecretCredential against Azurite (OAuth basic)", () => {
  test(`keeps working across ${TOKENS_WANTED - 1} token rotations with one token request per rotation`, async () => {
    // Arrange
    const credential = new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    const service: BlobServiceClient = azurite.blobServiceClient(credential);
    const container = service.getContainerClient(uniqueContainerName("rotation"));
    const tokenRequests = (): number =>
      emulator.requestCount({ clientId: CLIENT_ID, scope: STORAGE_SCOPE });

    let operations = 0;
    // Failures are kept as short descriptions: a RestError carries the whole request, and a
    // failing assertion should print what went wrong, not headers and certificates.
    const failures: string[] = [];
    const attempt = async (operation: string, run: () => Promise<void>): Promise<void> => {
      operations += 1;
      try {
        await run();
      } catch (error) {
        failures.push(`${operation}: ${describeFailure(error)}`);
      }
    };

    // Act: create, then upload/download/list continuously until the emulator has issued the
    // initial token and three rotations, plus a few rounds so the last token is used too.
    // The cap only stops a broken run from spinning; it is not a timing assertion.
    const giveUpAt = Date.now() + 25_000;
    let extraRounds = 3;
    await attempt("create container", async () => {
      await container.create();
    });
    for (let round = 0; extraRounds > 0 && Date.now() < giveUpAt; round += 1) {
      if (tokenRequests() >= TOKENS_WANTED) extraRounds -= 1;
      const blob = container.getBlockBlobClient(`blob-${round}`);
      const body = `payload ${round} ${randomUUID()}`;
      await attempt(`upload blob-${round}`, async () => {
        await blob.upload(body, Buffer.byteLength(body));
      });
      await attempt(`download blob-${round}`, async () => {
        const downloaded = (await blob.downloadToBuffer()).toString("utf8");
        if (downloaded !== body) throw new Error(`downloaded ${downloaded}, uploaded ${body}`);
      });
      await attempt("list blobs", async () => {
        const names: string[] = [];
        for await (const item of container.listBlobsFlat()) names.push(item.name);
        if (names.length !== round + 1) throw new Error(`listed ${names.length} blobs`);
      });
      // Paces the loop so it does not saturate the two shared cores; correctness does not
      // depend on this pause (the rotations are driven by the tokens' own lifetimes).
      await pause(50);
    }
    await credential.close();

    // Assert
    expect(failures).toEqual([]);
    const issued = tokenRequests();
    expect(issued).toBeGreaterThanOrEqual(TOKENS_WANTED);
    expect(emulator.requestCount({ clientId: CLIENT_ID, status: 200 })).toBe(issued);
    // @azure/storage-blob asks with `enableCae: true`, so every request carried `cp1`.
    expect(emulator.requestCount({ clientId: CLIENT_ID, cae: true })).toBe(issued);
    // About one token request per rotation, not one per operation.
    expect(operations).toBeGreaterThan(issued * 10);
  });

  test("is a TokenCredential, and the SDK asks it for CAE tokens (cp1 reaches the token endpoint)", async () => {
    // Arrange
    const clientId = randomUUID();
    emulator.registerApplication({ clientId, clientSecret: CLIENT_SECRET, tenants: [TENANT] });
    const credential = new ClientSecretCredential(TENANT, clientId, CLIENT_SECRET, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });

    // Act
    await azurite
      .blobServiceClient(credential)
      .getContainerClient(uniqueContainerName("cae"))
      .create();
    await credential.close();

    // Assert
    expect(isTokenCredential(credential)).toBe(true);
    const requests = emulator.requests.filter((request) => request.clientId === clientId);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.clientCapabilities).toContain("cp1");
    expect(emulator.requestCount({ clientId, cae: true })).toBe(1);
  });
});

describe("Azurite's OAuth check is real", () => {
  test("accepts a token the emulator signed for https://storage.azure.com", async () => {
    const token = emulator.mintToken({ audience: "https://storage.azure.com", tenant: TENANT });
    const service = azurite.blobServiceClient(presenting(token));

    const failure = await failureOf(
      service.getContainerClient(uniqueContainerName("good")).create(),
    );

    expect(failure).toEqual({});
  });

  test("rejects a token for another audience with 403", async () => {
    const token = emulator.mintToken({ audience: "https://vault.azure.net", tenant: TENANT });
    const service = azurite.blobServiceClient(presenting(token));

    const failure = await failureOf(
      service.getContainerClient(uniqueContainerName("audience")).create(),
    );

    expect(failure).toEqual({
      status: 403,
      code: "AuthenticationFailed",
      detail: "Invalid token audience.",
    });
  });

  test("rejects an expired token with 403", async () => {
    const token = emulator.mintToken({
      audience: "https://storage.azure.com",
      tenant: TENANT,
      notBefore: new Date(Date.now() - 120_000),
      lifetimeSeconds: 60,
    });
    const service = azurite.blobServiceClient(presenting(token));

    const failure = await failureOf(
      service.getContainerClient(uniqueContainerName("expired")).create(),
    );

    expect(failure).toEqual({
      status: 403,
      code: "AuthenticationFailed",
      detail: "Lifetime validation failed. The token is expired.",
    });
  });
});
