/**
 * What the emulator's token endpoint decides, without HTTP: the checks Entra ID makes of a
 * `client_credentials` request (grant, application, tenant, secret, scope, claims), answered
 * with Entra ID's error or with a signed token, and `mintToken` for tests that need one.
 */
import { randomUUID } from "node:crypto";
import type { Application } from "./applications.js";
import { checkClientAssertion } from "./client-assertion.js";
import type { Directory } from "./directory.js";
import { entraErrors } from "./entra-errors.js";
import type { EntraError } from "./entra-errors.js";
import type { SigningKey } from "./signing-key.js";
import type { ParsedTokenRequest } from "./token-request.js";
import type { EntraEmulatorOptions, MintTokenOptions } from "./types.js";

export const defaultLifetimeSeconds = 3599;
const oidcScopes = new Set(["openid", "profile", "offline_access"]);

/** The token endpoint's answer: an Entra ID error, or the body of a token response. */
export type TokenAnswer =
  | { readonly status: number; readonly error: EntraError }
  | {
      readonly status: 200;
      readonly body: Record<string, unknown>;
      /** The `jti` of the client assertion that authenticated the request, if one did. */
      readonly assertionId?: string | undefined;
    };

/** The decisions of one emulator's token endpoint. */
export interface TokenIssuer {
  /** The normal answer to `request` for `tenant`: an error or a token. */
  readonly answer: (tenant: string, request: ParsedTokenRequest) => TokenAnswer;
  /** A token signed with the emulator's key, shaped as `options` says. */
  readonly mint: (options: MintTokenOptions) => string;
}

export function createTokenIssuer(
  directory: Directory,
  signingKey: SigningKey,
  now: () => number,
  options: Pick<
    EntraEmulatorOptions,
    "tokenLifetimeSeconds" | "refreshInSeconds" | "trustedIssuers"
  >,
): TokenIssuer {
  const trustedIssuers = options.trustedIssuers ?? [];
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

  const answer = (tenant: string, request: ParsedTokenRequest): TokenAnswer => {
    const fail = (error: EntraError) => ({ status: error.status, error });
    if (request.grantType === undefined) return fail(entraErrors.missingParameter("grant_type"));
    if (request.grantType !== "client_credentials")
      return fail(entraErrors.unsupportedGrantType(request.grantType));
    if (request.clientId === undefined || request.clientId === "")
      return fail(entraErrors.missingParameter("client_id"));
    if (!directory.tenantExists(tenant)) return fail(entraErrors.unknownTenant(tenant));
    const app = directory.application(request.clientId);
    if (app === undefined || (app.tenants !== "*" && !app.tenants.has(tenant.toLowerCase()))) {
      return fail(entraErrors.unknownApplication(request.clientId, tenant));
    }
    let assertionId: string | undefined;
    if (request.clientSecret === undefined && request.clientAssertion !== undefined) {
      const verdict = checkClientAssertion(request.clientAssertion, request.clientAssertionType, {
        trustedIssuers,
        signingKey,
        now: now(),
      });
      if (!verdict.accepted) return fail(verdict.error);
      assertionId = verdict.id;
    } else {
      if (request.clientSecret === undefined) return fail(entraErrors.missingSecret());
      const verdict = app.secrets.verdict(request.clientSecret, now());
      if (verdict === "unknown") return fail(entraErrors.invalidSecret(app.clientId));
      if (verdict === "expired") return fail(entraErrors.expiredSecret(app.clientId));
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
    return {
      status: 200,
      body: issueToken(tenant, app, scope, request.clientCapabilities),
      assertionId,
    };
  };

  const mint = (mintOptions: MintTokenOptions): string => {
    const notBefore = Math.floor((mintOptions.notBefore?.getTime() ?? now()) / 1000);
    const clientId = mintOptions.clientId ?? "00000000-0000-0000-0000-000000000000";
    return signingKey.sign({
      aud: mintOptions.audience,
      iss: `https://sts.windows.net/${mintOptions.tenant}/`,
      iat: notBefore,
      nbf: notBefore,
      exp: notBefore + (mintOptions.lifetimeSeconds ?? defaultLifetimeSeconds),
      appid: clientId,
      appidacr: "1",
      idp: `https://sts.windows.net/${mintOptions.tenant}/`,
      oid: clientId,
      sub: clientId,
      tid: mintOptions.tenant,
      jti: randomUUID(),
      ver: "1.0",
      ...mintOptions.claims,
    });
  };

  return { answer, mint };
}
