/**
 * How failures before any HTTP answer are classified (the README's table "How failures are
 * classified"), through the real credential and MSAL: a host name that does not exist fails
 * at once as configuration; a refused connection is retried as transient, and its final
 * error names the refusal.
 */
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAuthenticationError, isCredentialUnavailableError } from "../../src/errors/index.js";

const tenant = "e0000000-0000-4000-8000-00000000000e";
const scope = "https://storage.azure.com/.default";

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("failures before any answer", () => {
  it("a host name that does not resolve (ENOTFOUND): a permanent CredentialUnavailableError naming the host", async () => {
    await using credential = new ClientSecretCredential(tenant, "app", "secret", {
      authorityHost: "https://login.does-not-exist.invalid",
      refresh: { retryBaseMs: 10, retryCapMs: 10 },
    });

    const error: unknown = await credential.getToken(scope).catch((caught: unknown) => caught);

    expect(isCredentialUnavailableError(error)).toBe(true);
    expect((error as Error).message).toContain(
      "The authority host login.does-not-exist.invalid does not resolve (ENOTFOUND)",
    );
  });

  it("a refused connection (ECONNREFUSED): transient, retried within the budget, then an AuthenticationError naming it", async () => {
    const port = await closedPort();
    await using credential = new ClientSecretCredential(tenant, "app", "secret", {
      authorityHost: `https://127.0.0.1:${port}`,
      refresh: { retryBaseMs: 20, retryCapMs: 20, retryWithoutTokenMs: 300 },
    });

    const error: unknown = await credential.getToken(scope).catch((caught: unknown) => caught);

    expect(isAuthenticationError(error)).toBe(true);
    if (!isAuthenticationError(error)) return;
    expect(error.transient).toBe(true);
    expect(error.errorResponse.error).toBe("endpoints_resolution_error");
    expect(error.errorResponse.errorDescription).toContain(
      `connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});
