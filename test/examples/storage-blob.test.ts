import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../examples/storage-blob/index.js";
import { startAzurite, type RunningAzurite } from "../support/azurite.js";

// Real time: Azurite checks `exp` against the wall clock with no leeway. Nothing below
// asserts on timing, only on what the example did.
describe("examples/storage-blob", () => {
  let azurite: RunningAzurite;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(() => azurite?.stop());

  it("creates, uploads, downloads and lists through BlobServiceClient with the credential, across token rotations", async () => {
    const lines: string[] = [];

    const result = await main({
      accountUrl: azurite.url,
      pipelineOptions: azurite.pipelineOptions,
      durationMs: 4_000,
      lifetimeSeconds: 3,
      refreshInSeconds: 1,
      log: (line) => lines.push(line),
    });

    expect(result.uploads).toBeGreaterThan(3);
    expect(result.verifiedDownloads).toBe(result.uploads);
    expect(result.listed).toHaveLength(result.uploads);
    // Tokens rotated during the run, yet far fewer token requests than storage calls.
    expect(result.tokenRequests).toBeGreaterThanOrEqual(2);
    expect(result.tokenRequests).toBeLessThan(2 + result.uploads * 2);
    expect(lines.join("\n")).not.toMatch(/eyJ[\w-]{20,}/);
  });
});
