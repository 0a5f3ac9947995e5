import { ConfidentialClientApplication } from "@azure/msal-node";
import type { AuthenticationResult } from "@azure/msal-node";
import { createNetworkClient } from "../../src/credential/network-client.js";
import type { NetworkClient } from "../../src/credential/network-client.js";
import type { EntraEmulator } from "../../src/testing/index.js";

/** GUID-shaped tenants: MSAL matches tenants by substring, so short ids would collide. */
export const tenantA = "a0000000-0000-4000-8000-00000000000a";
export const tenantB = "b0000000-0000-4000-8000-00000000000b";
export const storageScope = "https://storage.azure.com/.default";

/** A real MSAL confidential client pointed at `emulator`, trusting its certificate. */
export interface MsalAgainstEmulator {
  readonly app: ConfidentialClientApplication;
  readonly networkClient: NetworkClient;
  /**
   * One client-credentials request that always reaches the emulator (MSAL's cache skipped).
   * `correlationId` is what a surrounding `networkClient.run` is given: the network client
   * finds that call's signal and time limit by it.
   */
  acquire(
    scope?: string,
    options?: { claims?: string; correlationId?: string },
  ): Promise<AuthenticationResult>;
  close(): void;
}

/**
 * Builds a fresh MSAL app per call, so MSAL's own throttling cache (per app) never leaks
 * between tests; `knownAuthorities` keeps MSAL from asking the internet for instance metadata.
 */
export function msalAgainst(
  emulator: EntraEmulator,
  options: { clientId: string; clientSecret: string; tenant?: string; cae?: boolean },
): MsalAgainstEmulator {
  const networkClient = createNetworkClient({ ca: emulator.caCertificate });
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      authority: `${emulator.authorityHost}/${options.tenant ?? tenantA}`,
      knownAuthorities: [emulator.host],
      ...(options.cae === true ? { clientCapabilities: ["cp1"] } : {}),
    },
    system: { networkClient },
  });
  return {
    app,
    networkClient,
    acquire: async (scope = storageScope, extra = {}) => {
      const result = await app.acquireTokenByClientCredential({
        scopes: [scope],
        skipCache: true,
        ...(extra.claims === undefined ? {} : { claims: extra.claims }),
        ...(extra.correlationId === undefined ? {} : { correlationId: extra.correlationId }),
      });
      if (result === null) throw new Error("MSAL returned no result");
      return result;
    },
    close: () => networkClient.close(),
  };
}

/**
 * Posts a raw token request (for what MSAL cannot send, such as HTTP Basic). With
 * `correlationId` it is sent as MSAL sends token requests, so a `networkClient.run` given the
 * same id applies its signal and time limit to it.
 */
export async function postToken(
  emulator: EntraEmulator,
  networkClient: NetworkClient,
  form: Record<string, string>,
  options: { tenant?: string; headers?: Record<string, string>; correlationId?: string } = {},
): Promise<{ status: number; headers: Record<string, string>; body: Record<string, unknown> }> {
  return networkClient.sendPostRequestAsync<Record<string, unknown>>(
    `${emulator.authorityHost}/${options.tenant ?? tenantA}/oauth2/v2.0/token`,
    {
      headers: { "content-type": "application/x-www-form-urlencoded", ...options.headers },
      body: new URLSearchParams(form).toString(),
      ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
    },
  );
}
