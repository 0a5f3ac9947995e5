/**
 * The emulator's several secrets per application, added, revoked and expired while it runs,
 * through real HTTPS token requests.
 */
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetworkClient } from "../../src/credential/network-client.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { postToken, storageScope } from "../support/emulator.js";

const clientId = "55555555-5555-4555-8555-555555555555";

let emulator: EntraEmulator;
let network: ReturnType<typeof createNetworkClient>;
beforeAll(async () => {
  emulator = await startEntraEmulator();
  network = createNetworkClient({ ca: emulator.caCertificate });
  emulator.registerApplication({ clientId, clientSecret: "first-secret-0001" });
});
afterAll(async () => {
  network.close();
  await emulator.stop();
});

async function answer(secret: string): Promise<string> {
  const response = await postToken(emulator, network, {
    grant_type: "client_credentials",
    client_id: clientId,
    client_secret: secret,
    scope: storageScope,
  });
  const codes = response.body["error_codes"] as number[] | undefined;
  return response.status === 200
    ? "200"
    : `${response.status} ${String(response.body["error"])} ${String(codes?.[0])}`;
}

describe("client secrets at run time", () => {
  it("holds several valid secrets; a revoked one is refused like a wrong one, an expired one with AADSTS7000222", async () => {
    emulator.addClientSecret(clientId, "second-secret-0002");
    const both = [await answer("first-secret-0001"), await answer("second-secret-0002")];
    emulator.revokeClientSecret(clientId, "first-secret-0001");
    emulator.expireClientSecret(clientId, "second-secret-0002");
    const after = [await answer("first-secret-0001"), await answer("second-secret-0002")];
    emulator.addClientSecret(clientId, "third-secret-0003", {
      expiresOn: new Date(Date.now() + 60_000),
    });

    expect(both).toEqual(["200", "200"]);
    expect(after).toEqual(["401 invalid_client 7000215", "401 invalid_client 7000222"]);
    expect(await answer("third-secret-0003")).toBe("200");
    expect(await answer("never-added-0004")).toBe("401 invalid_client 7000215");
  });

  it("says clearly what is unknown, and never shows a secret in inspect", () => {
    expect(() => emulator.addClientSecret("no-such-app", "x")).toThrow(
      "No application 'no-such-app' is registered with the emulator",
    );
    expect(() => emulator.revokeClientSecret(clientId, "never-added-0004")).toThrow(
      `Application '${clientId}' holds no such client secret`,
    );
    expect(() => emulator.addClientSecret(clientId, "")).toThrow(/non-empty string/);
    expect(inspect(emulator, { depth: 10, showHidden: true })).not.toMatch(/secret-000/);
  });
});
