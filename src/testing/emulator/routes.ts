/**
 * The emulator's HTTP routing: which endpoint a request reaches (OpenID configuration,
 * instance discovery, JWKS, token), how a token request is logged, delayed, faulted and
 * answered, and the JSON responses in Entra ID's shape. The state it works on (directory,
 * faults, request log, latency) is the emulator's, passed in.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isWellFormedTenant } from "./applications.js";
import { entraErrorBody, entraErrors } from "./entra-errors.js";
import type { EntraError } from "./entra-errors.js";
import type { FaultBook } from "./faults.js";
import {
  MANAGED_IDENTITY_PATH,
  readManagedIdentityRequest,
  type ManagedIdentity,
} from "./managed-identity.js";
import type { LoggedRequest, RequestLog } from "./request-log.js";
import type { SigningKey } from "./signing-key.js";
import type { TokenIssuer } from "./token-issuer.js";
import { parseTokenRequest } from "./token-request.js";
import type { FaultSpec } from "./types.js";

/** What the routes read and change. */
export interface RouteState {
  /** The emulator's origin, known once the server listens. */
  readonly authorityHost: () => string;
  readonly now: () => number;
  readonly issuer: TokenIssuer;
  readonly faults: FaultBook;
  readonly log: RequestLog;
  readonly signingKey: SigningKey;
  /** The latency every token answer waits (`setLatency`). */
  readonly latencyMs: () => number;
  /** Runs `fn` after `ms` on a timer `stop()` clears. */
  readonly later: (ms: number, fn: () => void) => void;
  /** The identity the managed identity endpoint serves. */
  readonly managedIdentity: ManagedIdentity;
}

/** A JSON response with Entra ID's headers; nothing when the response already ended. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
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
}

/** Creates the router of one emulator: `route` answers a request whose body was read. */
export function createRoutes(
  state: RouteState,
): (req: IncomingMessage, res: ServerResponse, body: string) => void {
  const { authorityHost, now, issuer, faults, log, signingKey, latencyMs, later } = state;
  const { managedIdentity } = state;

  const sendError = (
    res: ServerResponse,
    error: EntraError,
    correlationId: string | undefined,
    extraHeaders: Record<string, string> = {},
  ): void => {
    sendJson(
      res,
      error.status,
      entraErrorBody(error, { now: now(), authorityHost: authorityHost(), correlationId }),
      extraHeaders,
    );
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
    const record: LoggedRequest = {
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
    log.add(record);

    const fault = faults.take({ tenant, clientId: record.clientId, scopes: request.scopes });
    record.faulted = fault !== undefined;
    const respond = (): void => {
      if (res.destroyed) return;
      if (fault !== undefined && applyFault(fault, req, res, request.correlationId, record, body))
        return;
      const outcome = issuer.answer(tenant, request);
      record.status = outcome.status;
      if ("assertionId" in outcome) record.clientAssertionId = outcome.assertionId;
      if ("error" in outcome) sendError(res, outcome.error, request.correlationId);
      else if (fault?.omitExpiresIn === true) {
        const { expires_in: _expiresIn, ext_expires_in: _ext, ...rest } = outcome.body;
        sendJson(res, 200, rest);
      } else if (fault?.expiresIn !== undefined) {
        sendJson(res, 200, {
          ...outcome.body,
          expires_in: fault.expiresIn,
          ext_expires_in: fault.expiresIn,
        });
      } else sendJson(res, 200, outcome.body);
    };
    answerLater(fault, respond);
  };

  /** Runs `respond` after the latency and the fault's delay (never, for a hanging fault). */
  const answerLater = (fault: FaultSpec | undefined, respond: () => void): void => {
    const delay = latencyMs() + (fault?.delayMs ?? 0);
    if (fault?.hang === true) return; // Held until the client gives up or stop() destroys it.
    if (delay > 0) later(delay, respond);
    else respond();
  };

  /** The App Service-style managed identity endpoint (managed-identity.ts). */
  const handleManagedIdentity = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const read = readManagedIdentityRequest(
      req.method ?? "GET",
      url,
      req.headers["x-identity-header"],
      managedIdentity,
    );
    // Counted like token requests, the resource as the scope a client asked for.
    const scope = read.ok ? `${read.resource.replace(/\/+$/, "")}/.default` : undefined;
    const record: LoggedRequest = {
      tenant: managedIdentity.tenant,
      clientId: managedIdentity.clientId,
      scopes: scope === undefined ? [] : [scope],
      claims: undefined,
      clientCapabilities: [],
      authMethod: "managed-identity",
      status: 0,
      faulted: false,
      at: now(),
    };
    log.add(record);
    if (!read.ok) {
      record.status = read.status;
      return sendJson(res, read.status, { statusCode: read.status, message: read.message });
    }
    const fault = faults.take({
      tenant: managedIdentity.tenant,
      clientId: managedIdentity.clientId,
      scopes: record.scopes,
    });
    record.faulted = fault !== undefined;
    answerLater(fault, () => {
      if (res.destroyed) return;
      if (fault !== undefined && applyFault(fault, req, res, undefined, record, "")) return;
      const lifetime = managedIdentity.tokenLifetimeSeconds;
      record.status = 200;
      sendJson(res, 200, {
        access_token: issuer.mint({
          audience: read.resource,
          tenant: managedIdentity.tenant,
          clientId: managedIdentity.clientId,
          lifetimeSeconds: lifetime,
        }),
        // App Service answers epoch seconds as a string.
        expires_on: String(Math.floor(now() / 1000) + lifetime),
        resource: read.resource,
        token_type: "Bearer",
        client_id: managedIdentity.clientId,
      });
    });
  };

  /** Answers per `fault`; returns false when the normal answer should follow. */
  const applyFault = (
    fault: FaultSpec,
    req: IncomingMessage,
    res: ServerResponse,
    correlationId: string | undefined,
    record: LoggedRequest,
    body: string,
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
      description:
        (fault.description ?? base.description) +
        (fault.echoRequest === true
          ? ` Received: ${body} Authorization: ${req.headers.authorization ?? "(none)"}`
          : ""),
    };
    record.status = status;
    const headers: Record<string, string> =
      fault.retryAfter === undefined ? {} : { "retry-after": String(fault.retryAfter) };
    sendError(res, error, correlationId, headers);
    return true;
  };

  const openIdConfiguration = (tenant: string): Record<string, unknown> => {
    const base = `${authorityHost()}/${tenant}`;
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
    const host = new URL(authorityHost()).host;
    return {
      tenant_discovery_endpoint: `${authorityHost()}/{tenant}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  };

  const route = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const url = new URL(req.url ?? "/", authorityHost());
    if (url.pathname === MANAGED_IDENTITY_PATH) return handleManagedIdentity(req, res, url);
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

  return route;
}
