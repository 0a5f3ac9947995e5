/**
 * The emulator as a server: it validates its options, generates its certificate and signing
 * key, holds its state (directory, faults, request log, latency), reads request bodies, hands
 * them to its routes (`routes.ts`), and stops with every socket and timer. What the token
 * endpoint decides is in `token-issuer.ts`.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { generateLoopbackCertificate, writeCaFile } from "./certificate.js";
import { createDirectory } from "./directory.js";
import { FaultBook } from "./faults.js";
import { MANAGED_IDENTITY_PATH, managedIdentityOf } from "./managed-identity.js";
import { createRequestLog } from "./request-log.js";
import { secretManagement } from "./secret-management.js";
import { createRoutes, sendJson } from "./routes.js";
import { createSigningKey } from "./signing-key.js";
import { createTokenIssuer, defaultLifetimeSeconds } from "./token-issuer.js";
import type { EntraEmulator, EntraEmulatorOptions, TokenRequestRecord } from "./types.js";

// Longer than any client keeps an idle connection (msal-node's fetch, Node's agent), so a
// client never sends a request on a socket the emulator has just closed (DESIGN.md facts).
const keepAliveTimeoutMs = 65_000;
const maxBodyBytes = 64 * 1024;

/**
 * Starts a local Entra ID emulator: a real HTTPS server on 127.0.0.1 that speaks enough of
 * Entra ID for `@azure/msal-node` (and so for `ClientSecretCredential`): the v2.0 OpenID
 * configuration of any tenant, instance discovery, the JWKS, and the v2.0 token endpoint for
 * `client_credentials` with the secret in the form body or in HTTP Basic, or with a
 * `client_assertion` from one of `trustedIssuers` (workload identity federation); and an App
 * Service-style managed identity endpoint at `identityEndpoint`.
 *
 * Tokens are RS256 JWTs with `aud` taken from the scope (`https://storage.azure.com/.default`
 * gives `https://storage.azure.com`), `iss` `https://sts.windows.net/{tenant}/`, `tid`,
 * `appid`, `oid`, `iat`, `nbf`, `exp`, `jti`, and `xms_cc` when the client asked for
 * capabilities (CAE). Errors have Entra ID's shape, status and AADSTS codes: wrong secret
 * (401 `invalid_client` 7000215), expired secret (401 7000222), unknown application (400
 * `unauthorized_client` 700016), unknown tenant (400 `invalid_request` 90002), bad scope
 * (400 `invalid_scope` 70011). The OpenID configuration is served for every tenant, so an
 * unknown tenant fails at the token endpoint with its AADSTS code rather than as MSAL's
 * opaque `endpoints_resolution_error`.
 *
 * **Trusting its certificate.** The certificate is generated at start, so Node does not
 * trust it by default. Either give `emulator.caCertificate` to the credential's `ca` option
 * (this client only, any time), or start a *new* process with
 * `NODE_EXTRA_CA_CERTS=emulator.caFile`: Node reads that variable once, at process start.
 *
 * **MSAL and instance discovery.** For a host that is not Microsoft's, MSAL asks
 * `login.microsoftonline.com` which hosts are valid unless told not to: configure MSAL with
 * `knownAuthorities: [emulator.host]` (or the credential's `disableInstanceDiscovery`).
 *
 * @example
 * ```ts
 * import { startEntraEmulator } from "rx-identity/testing";
 * import { ClientSecretCredential } from "rx-identity";
 *
 * await using emulator = await startEntraEmulator();
 * emulator.registerApplication({ clientId: "my-app", clientSecret: "s3cret" });
 * const credential = new ClientSecretCredential(tenantId, "my-app", "s3cret", {
 *   authorityHost: emulator.authorityHost,
 *   ca: emulator.caCertificate,
 *   disableInstanceDiscovery: true,
 * });
 * emulator.injectFault({ status: 503, retryAfter: 2 }); // the next request fails once
 * await credential.getToken("https://storage.azure.com/.default");
 * emulator.requestCount({ scope: "https://storage.azure.com/.default" }); // 2
 * ```
 */
export async function startEntraEmulator(
  options: EntraEmulatorOptions = {},
): Promise<EntraEmulator> {
  validateOptions(options);
  const now = options.now ?? (() => Date.now());
  const tls = options.tls ?? (await generateLoopbackCertificate());
  const signingKey = createSigningKey();
  const caFile = await writeCaFile(tls.cert);

  const directory = createDirectory(options.tenants);
  const issuer = createTokenIssuer(directory, signingKey, now, options);
  const faults = new FaultBook();
  const log = createRequestLog();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const managedIdentity = managedIdentityOf(
    options.managedIdentity,
    randomUUID(),
    options.tokenLifetimeSeconds ?? defaultLifetimeSeconds,
  );
  let latencyMs = 0;
  let authorityHost = "";
  let stopping: Promise<void> | undefined;

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const route = createRoutes({
    authorityHost: () => authorityHost,
    now,
    issuer,
    faults,
    log,
    signingKey,
    latencyMs: () => latencyMs,
    later,
    managedIdentity,
  });

  const server = createServer(
    { cert: tls.cert, key: tls.key, keepAliveTimeout: keepAliveTimeoutMs },
    (req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > maxBodyBytes) {
          sendJson(res, 413, {
            error: "invalid_request",
            error_description: "The request body is too large.",
          });
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on("end", () => {
        if (size > maxBodyBytes) return;
        try {
          route(req, res, Buffer.concat(chunks).toString("utf8"));
        } catch (error) {
          sendJson(res, 500, {
            error: "server_error",
            error_description: `The emulator failed: ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      });
    },
  );
  // Requests must outlive the keep-alive window; headersTimeout must exceed it (Node docs).
  server.headersTimeout = keepAliveTimeoutMs + 1_000;
  server.requestTimeout = 0;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => {
    // A client that does not trust the certificate hangs up during the handshake: expected.
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    await caFile.remove();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  authorityHost = `https://127.0.0.1:${port}`;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
      await caFile.remove();
    })();
    return stopping;
  };

  const emulator: EntraEmulator = {
    authorityHost,
    host: `127.0.0.1:${port}`,
    port,
    caCertificate: tls.cert,
    caFile: caFile.path,
    identityEndpoint: `${authorityHost}${MANAGED_IDENTITY_PATH}`,
    identityHeader: managedIdentity.header,
    jwks: signingKey.jwks,
    registerApplication: directory.register,
    removeApplication: directory.remove,
    ...secretManagement(directory.application, now),
    injectFault: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    setLatency: (ms) => {
      if (!(ms >= 0 && Number.isFinite(ms))) {
        throw new RangeError(
          `Expected latency to be a non-negative number of milliseconds, got ${String(ms)}`,
        );
      }
      latencyMs = ms;
    },
    get requests(): readonly TokenRequestRecord[] {
      return log.records();
    },
    requestCount: log.count,
    clearRequests: log.clear,
    waitForRequests: log.waitFor,
    mintToken: issuer.mint,
    verifyToken: (token) => signingKey.verify(token),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  return emulator;
}

function validateOptions(options: EntraEmulatorOptions): void {
  if (
    options.port !== undefined &&
    !(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65_535)
  ) {
    throw new RangeError(
      `Expected \`port\` to be an integer from 0 to 65535, got ${String(options.port)}`,
    );
  }
  for (const [name, value] of [
    ["tokenLifetimeSeconds", options.tokenLifetimeSeconds],
    ["refreshInSeconds", options.refreshInSeconds],
    ["managedIdentity.tokenLifetimeSeconds", options.managedIdentity?.tokenLifetimeSeconds],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(
        `Expected \`${name}\` to be a positive number of seconds, got ${String(value)}`,
      );
    }
  }
  const issuers: unknown = options.trustedIssuers;
  if (
    issuers !== undefined &&
    !(
      Array.isArray(issuers) &&
      issuers.every((issuer) => typeof issuer === "string" && issuer.length > 0)
    )
  ) {
    throw new RangeError("Expected `trustedIssuers` to be an array of non-empty issuer strings");
  }
}
