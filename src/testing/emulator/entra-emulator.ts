import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { isWellFormedTenant, toApplication } from "./applications.js";
import type { Application } from "./applications.js";
import { generateLoopbackCertificate, writeCaFile } from "./certificate.js";
import { entraErrorBody, entraErrors } from "./entra-errors.js";
import type { EntraError } from "./entra-errors.js";
import { FaultBook } from "./faults.js";
import { createSigningKey } from "./signing-key.js";
import { canonicalJson, parseTokenRequest } from "./token-request.js";
import type { ParsedTokenRequest } from "./token-request.js";
import type {
  EntraEmulator,
  EntraEmulatorOptions,
  FaultSpec,
  MintTokenOptions,
  RequestFilter,
  TokenRequestRecord,
} from "./types.js";

const defaultLifetimeSeconds = 3599;
// Longer than any client keeps an idle connection (msal-node's fetch, Node's agent), so a
// client never sends a request on a socket the emulator has just closed (DESIGN.md facts).
const keepAliveTimeoutMs = 65_000;
const maxBodyBytes = 64 * 1024;
const oidcScopes = new Set(["openid", "profile", "offline_access"]);

interface MutableRecord {
  tenant: string;
  clientId: string;
  scopes: readonly string[];
  claims: string | undefined;
  clientCapabilities: readonly string[];
  authMethod: "post" | "basic" | "none";
  status: number;
  faulted: boolean;
  at: number;
}

/**
 * Starts a local Entra ID emulator: a real HTTPS server on 127.0.0.1 that speaks enough of
 * Entra ID for `@azure/msal-node` (and so for `ClientSecretCredential`): the v2.0 OpenID
 * configuration of any tenant, instance discovery, the JWKS, and the v2.0 token endpoint for
 * `client_credentials` with the secret in the form body or in HTTP Basic.
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

  const applications = new Map<string, Application>();
  const knownTenants: Set<string> | "*" =
    options.tenants === undefined || options.tenants === "*"
      ? "*"
      : new Set(options.tenants.map((tenant) => tenant.toLowerCase()));
  const faults = new FaultBook();
  const log: MutableRecord[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let latencyMs = 0;
  let authorityHost = "";
  let stopping: Promise<void> | undefined;

  const tenantExists = (tenant: string): boolean => {
    if (knownTenants === "*") return true;
    const lower = tenant.toLowerCase();
    if (knownTenants.has(lower)) return true;
    for (const app of applications.values()) {
      if (app.tenants !== "*" && app.tenants.has(lower)) return true;
    }
    return false;
  };

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    extraHeaders: Record<string, string> = {},
  ): void => {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store, no-cache",
      pragma: "no-cache",
      "x-ms-request-id": randomUUID(),
      "content-length": String(Buffer.byteLength(text)),
      ...extraHeaders,
    });
    res.end(text);
  };

  const sendError = (
    res: ServerResponse,
    error: EntraError,
    correlationId: string | undefined,
    extraHeaders: Record<string, string> = {},
  ): void => {
    sendJson(
      res,
      error.status,
      entraErrorBody(error, { now: now(), authorityHost, correlationId }),
      extraHeaders,
    );
  };

  const issueToken = (
    tenant: string,
    app: Application,
    scope: string,
    capabilities: readonly string[],
  ): Record<string, unknown> => {
    const lifetime =
      app.tokenLifetimeSeconds ?? options.tokenLifetimeSeconds ?? defaultLifetimeSeconds;
    const refreshIn = app.refreshInSeconds ?? options.refreshInSeconds;
    const issuedAt = Math.floor(now() / 1000);
    const payload: Record<string, unknown> = {
      aud: scope.slice(0, -"/.default".length),
      iss: `https://sts.windows.net/${tenant}/`,
      iat: issuedAt,
      nbf: issuedAt,
      exp: issuedAt + lifetime,
      appid: app.clientId,
      appidacr: "1",
      idp: `https://sts.windows.net/${tenant}/`,
      oid: app.objectId,
      sub: app.objectId,
      tid: tenant,
      jti: randomUUID(),
      uti: randomUUID().replace(/-/g, "").slice(0, 22),
      ver: "1.0",
      ...(capabilities.length > 0 ? { xms_cc: [...capabilities] } : {}),
    };
    return {
      token_type: "Bearer",
      expires_in: lifetime,
      ext_expires_in: lifetime,
      ...(refreshIn === undefined ? {} : { refresh_in: refreshIn }),
      access_token: signingKey.sign(payload),
    };
  };

  /** The normal answer of the token endpoint: an error or a token. */
  const answer = (
    tenant: string,
    request: ParsedTokenRequest,
  ): { status: number; error: EntraError } | { status: 200; body: Record<string, unknown> } => {
    const fail = (error: EntraError) => ({ status: error.status, error });
    if (request.grantType === undefined) return fail(entraErrors.missingParameter("grant_type"));
    if (request.grantType !== "client_credentials")
      return fail(entraErrors.unsupportedGrantType(request.grantType));
    if (request.clientId === undefined || request.clientId === "")
      return fail(entraErrors.missingParameter("client_id"));
    if (!tenantExists(tenant)) return fail(entraErrors.unknownTenant(tenant));
    const app = applications.get(request.clientId);
    if (app === undefined || (app.tenants !== "*" && !app.tenants.has(tenant.toLowerCase()))) {
      return fail(entraErrors.unknownApplication(request.clientId, tenant));
    }
    if (request.clientSecret === undefined) return fail(entraErrors.missingSecret());
    if (!app.secretMatches(request.clientSecret))
      return fail(entraErrors.invalidSecret(app.clientId));
    if (app.secretExpiresOn !== undefined && app.secretExpiresOn.getTime() <= now()) {
      return fail(entraErrors.expiredSecret(app.clientId));
    }
    const resourceScopes = request.scopes.filter((scope) => !oidcScopes.has(scope));
    if (resourceScopes.length === 0) return fail(entraErrors.missingParameter("scope"));
    const [scope] = resourceScopes;
    if (
      resourceScopes.length > 1 ||
      scope === undefined ||
      !scope.endsWith("/.default") ||
      scope === "/.default"
    ) {
      return fail(entraErrors.invalidScope(resourceScopes.join(" ")));
    }
    if (request.claimsInvalid) {
      return fail({
        status: 400,
        error: "invalid_request",
        aadsts: 90014,
        description: "The 'claims' parameter is not a valid JSON object.",
      });
    }
    return { status: 200, body: issueToken(tenant, app, scope, request.clientCapabilities) };
  };

  const handleToken = (
    req: IncomingMessage,
    res: ServerResponse,
    tenant: string,
    body: string,
  ): void => {
    const request = parseTokenRequest(body, {
      authorization: req.headers.authorization,
      "client-request-id": req.headers["client-request-id"],
    });
    const record: MutableRecord = {
      tenant,
      clientId: request.clientId ?? "",
      scopes: request.scopes,
      claims: request.claims,
      clientCapabilities: request.clientCapabilities,
      authMethod: request.authMethod,
      status: 0,
      faulted: false,
      at: now(),
    };
    log.push(record);
    for (const waiter of [...waiters]) {
      if (log.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }

    const fault = faults.take({ tenant, clientId: record.clientId, scopes: request.scopes });
    record.faulted = fault !== undefined;
    const respond = (): void => {
      if (res.destroyed) return;
      if (fault !== undefined && applyFault(fault, req, res, request, record)) return;
      const outcome = answer(tenant, request);
      record.status = outcome.status;
      if ("error" in outcome) sendError(res, outcome.error, request.correlationId);
      else if (fault?.omitExpiresIn === true) {
        const { expires_in: _expiresIn, ext_expires_in: _ext, ...rest } = outcome.body;
        sendJson(res, 200, rest);
      } else sendJson(res, 200, outcome.body);
    };
    const delay = latencyMs + (fault?.delayMs ?? 0);
    if (fault?.hang === true) return; // Held until the client gives up or stop() destroys it.
    if (delay > 0) later(delay, respond);
    else respond();
  };

  /** Answers per `fault`; returns false when the normal answer should follow. */
  const applyFault = (
    fault: FaultSpec,
    req: IncomingMessage,
    res: ServerResponse,
    request: ParsedTokenRequest,
    record: MutableRecord,
  ): boolean => {
    if (fault.drop === true) {
      req.socket.destroy();
      return true;
    }
    if (fault.malformedJson === true) {
      record.status = 200;
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end('{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ');
      return true;
    }
    if (fault.status === undefined && fault.error === undefined && fault.aadsts === undefined) {
      return false;
    }
    const status = fault.status ?? 503;
    const base = entraErrors.forStatus(status);
    const error: EntraError = {
      status,
      error: fault.error ?? base.error,
      aadsts: fault.aadsts ?? base.aadsts,
      description: fault.description ?? base.description,
    };
    record.status = status;
    const headers: Record<string, string> =
      fault.retryAfter === undefined ? {} : { "retry-after": String(fault.retryAfter) };
    sendError(res, error, request.correlationId, headers);
    return true;
  };

  const openIdConfiguration = (tenant: string): Record<string, unknown> => {
    const base = `${authorityHost}/${tenant}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: [
        "client_secret_post",
        "client_secret_basic",
        "private_key_jwt",
      ],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      // msal-common accepts an issuer on the authority's own scheme, host and port.
      issuer: `${base}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid", "xms_cc"],
      tenant_region_scope: "WW",
      cloud_instance_name: "rx-identity.emulator",
    };
  };

  const instanceDiscovery = (): Record<string, unknown> => {
    const host = new URL(authorityHost).host;
    return {
      tenant_discovery_endpoint: `${authorityHost}/{tenant}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  };

  const route = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const url = new URL(req.url ?? "/", authorityHost);
    const segments = url.pathname.split("/").filter((segment) => segment.length > 0);
    const [first, ...rest] = segments;
    const path = rest.join("/");
    const notFound = (): void =>
      sendJson(res, 404, {
        error: "not_found",
        error_description: `No emulated endpoint at ${url.pathname}`,
      });
    if (first === undefined) return notFound();
    let tenant: string;
    try {
      tenant = decodeURIComponent(first);
    } catch {
      return notFound();
    }
    const method = req.method ?? "GET";

    if (method === "GET" && path === "discovery/instance")
      return sendJson(res, 200, instanceDiscovery());
    if (!isWellFormedTenant(tenant)) {
      return sendError(
        res,
        {
          status: 400,
          error: "invalid_request",
          aadsts: 900023,
          description: `Specified tenant identifier '${tenant.replace(/[^\x20-\x7e]/g, "?")}' is neither a valid DNS name, nor a valid external domain.`,
        },
        undefined,
      );
    }
    if (
      method === "GET" &&
      (path === "v2.0/.well-known/openid-configuration" ||
        path === ".well-known/openid-configuration")
    ) {
      return sendJson(res, 200, openIdConfiguration(tenant));
    }
    if (method === "GET" && (path === "discovery/v2.0/keys" || path === "discovery/keys")) {
      return sendJson(res, 200, signingKey.jwks);
    }
    if (path === "oauth2/v2.0/token") {
      if (method !== "POST") {
        return sendJson(
          res,
          405,
          { error: "invalid_request", error_description: "Use POST." },
          { allow: "POST" },
        );
      }
      return handleToken(req, res, tenant, body);
    }
    return notFound();
  };

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

  const matchesFilter = (record: MutableRecord, filter: RequestFilter): boolean => {
    if (filter.tenant !== undefined && filter.tenant.toLowerCase() !== record.tenant.toLowerCase())
      return false;
    if (filter.clientId !== undefined && filter.clientId !== record.clientId) return false;
    if (filter.scope !== undefined && !record.scopes.includes(filter.scope)) return false;
    if (filter.status !== undefined && filter.status !== record.status) return false;
    if (filter.cae !== undefined && filter.cae !== record.clientCapabilities.includes("cp1"))
      return false;
    if (filter.claims !== undefined) {
      if (filter.claims === null) return record.claims === undefined;
      if (record.claims === undefined) return false;
      const wanted = typeof filter.claims === "string" ? parseJson(filter.claims) : filter.claims;
      return canonicalJson(wanted) === canonicalJson(parseJson(record.claims));
    }
    return true;
  };

  const emulator: EntraEmulator = {
    authorityHost,
    host: `127.0.0.1:${port}`,
    port,
    caCertificate: tls.cert,
    caFile: caFile.path,
    jwks: signingKey.jwks,
    registerApplication: (registration) => {
      applications.set(registration.clientId, toApplication(registration));
      return registration;
    },
    removeApplication: (clientId) => {
      applications.delete(clientId);
    },
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
      return log.map((record) => ({ ...record }));
    },
    requestCount: (filter = {}) => log.filter((record) => matchesFilter(record, filter)).length,
    clearRequests: () => {
      log.length = 0;
    },
    waitForRequests: (count) =>
      log.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    mintToken: (mint: MintTokenOptions) => {
      const notBefore = Math.floor((mint.notBefore?.getTime() ?? now()) / 1000);
      const clientId = mint.clientId ?? "00000000-0000-0000-0000-000000000000";
      return signingKey.sign({
        aud: mint.audience,
        iss: `https://sts.windows.net/${mint.tenant}/`,
        iat: notBefore,
        nbf: notBefore,
        exp: notBefore + (mint.lifetimeSeconds ?? defaultLifetimeSeconds),
        appid: clientId,
        appidacr: "1",
        idp: `https://sts.windows.net/${mint.tenant}/`,
        oid: clientId,
        sub: clientId,
        tid: mint.tenant,
        jti: randomUUID(),
        ver: "1.0",
        ...mint.claims,
      });
    },
    verifyToken: (token) => signingKey.verify(token),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  return emulator;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
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
  for (const name of ["tokenLifetimeSeconds", "refreshInSeconds"] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(
        `Expected \`${name}\` to be a positive number of seconds, got ${String(value)}`,
      );
    }
  }
}
