/**
 * The emulator's two endpoints for `reactiveCredential`'s tests, over real HTTPS: the App
 * Service-style managed identity endpoint, and jwt-bearer client assertions from trusted
 * issuers at the token endpoint (workload identity federation). What `@azure/identity`
 * makes of them is in `test/interop/identity-credentials.test.ts`.
 */
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "e0000000-0000-4000-8000-00000000000e";
const issuer = "https://oidc.rx-identity.test/cluster-2";
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

let emulator: EntraEmulator;

beforeAll(async () => {
  emulator = await startEntraEmulator({
    trustedIssuers: [issuer],
    managedIdentity: { tenant, clientId: "mi-client", tokenLifetimeSeconds: 600 },
  });
  emulator.registerApplication({ clientId: "wl-app", clientSecret: "unused-secret" });
});
afterAll(async () => {
  await emulator?.stop();
});

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

function send(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: emulator.caCertificate }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

function managedIdentityRequest(query: string, header = emulator.identityHeader): Promise<Reply> {
  return send("GET", `${emulator.identityEndpoint}?${query}`, { "x-identity-header": header });
}

function assertionRequest(assertion: string, type = jwtBearer): Promise<Reply> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: "wl-app",
    scope: "https://storage.azure.com/.default",
    client_assertion_type: type,
    client_assertion: assertion,
  });
  return send(
    "POST",
    `${emulator.authorityHost}/${tenant}/oauth2/v2.0/token`,
    { "content-type": "application/x-www-form-urlencoded" },
    form.toString(),
  );
}

function serviceAccountToken(
  claims: Record<string, unknown> = {},
  lifetimeSeconds = 3_600,
  audience = "api://AzureADTokenExchange",
): string {
  return emulator.mintToken({
    audience,
    tenant,
    lifetimeSeconds,
    claims: { iss: issuer, sub: "system:serviceaccount:orders:api", ...claims },
  });
}

describe("managed identity endpoint", () => {
  test("answers a token for the resource, counted under the identity's tenant and client id", async () => {
    const before = emulator.requestCount({ clientId: "mi-client" });

    const reply = await managedIdentityRequest(
      "api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net",
    );

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ resource: "https://vault.azure.net", token_type: "Bearer" });
    const expiresOn = Number(reply.body["expires_on"]);
    expect(expiresOn - Date.now() / 1000).toBeGreaterThan(590);
    expect(expiresOn - Date.now() / 1000).toBeLessThanOrEqual(601);
    expect(emulator.verifyToken(reply.body["access_token"] as string)).toMatchObject({
      aud: "https://vault.azure.net",
      tid: tenant,
      appid: "mi-client",
    });
    expect(emulator.requestCount({ clientId: "mi-client" }) - before).toBe(1);
    expect(emulator.requests.at(-1)).toMatchObject({
      authMethod: "managed-identity",
      scopes: ["https://vault.azure.net/.default"],
      status: 200,
    });
  });

  test.each([
    [
      "a wrong X-IDENTITY-HEADER",
      "api-version=2019-08-01&resource=https://vault.azure.net",
      "no",
      401,
    ],
    [
      "another api-version",
      "api-version=2017-09-01&resource=https://vault.azure.net",
      undefined,
      400,
    ],
    ["no resource", "api-version=2019-08-01", undefined, 400],
  ] as const)("refuses %s", async (_name, query, header, status) => {
    const reply = await managedIdentityRequest(query, header ?? emulator.identityHeader);

    expect(reply.status).toBe(status);
    expect(reply.body).toMatchObject({ statusCode: status });
    expect(typeof reply.body["message"]).toBe("string");
  });

  test("faults apply to it, matched by scope", async () => {
    const fault = emulator.injectFault({
      match: { scope: "https://fault.example/.default" },
      status: 503,
      retryAfter: 2,
    });

    const reply = await managedIdentityRequest(
      "api-version=2019-08-01&resource=https://fault.example",
    );

    expect(reply.status).toBe(503);
    expect(fault.hits).toBe(1);
  });
});

describe("client assertions (workload identity)", () => {
  test("an assertion from a trusted issuer stands in for the secret", async () => {
    const assertion = serviceAccountToken({ jti: "assertion-1" });

    const reply = await assertionRequest(assertion);

    expect(reply.status).toBe(200);
    expect(emulator.verifyToken(reply.body["access_token"] as string)).toMatchObject({
      appid: "wl-app",
      tid: tenant,
    });
    expect(emulator.requests.at(-1)).toMatchObject({
      authMethod: "assertion",
      clientAssertionId: "assertion-1",
    });
  });

  test.each([
    [
      "from an issuer not trusted",
      () => serviceAccountToken({ iss: "https://evil.example/" }),
      70021,
    ],
    [
      "for another audience",
      () => serviceAccountToken({}, 3_600, "https://storage.azure.com"),
      70021,
    ],
    ["expired", () => serviceAccountToken({}, -60), 700024],
    [
      "not yet valid",
      () => serviceAccountToken({ nbf: Math.floor(Date.now() / 1000) + 600 }),
      700024,
    ],
    ["with a broken signature", () => `${serviceAccountToken()}x`, 50027],
  ] as const)("refuses an assertion %s with AADSTS%i", async (_name, assertion, aadsts) => {
    const reply = await assertionRequest(assertion());

    expect(reply.status).toBe(401);
    expect(reply.body).toMatchObject({ error: "invalid_client", error_codes: [aadsts] });
    expect(emulator.requests.at(-1)?.clientAssertionId).toBeUndefined();
  });

  test("refuses another client_assertion_type", async () => {
    const reply = await assertionRequest(serviceAccountToken(), "urn:example:saml");

    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ error: "invalid_request", error_codes: [50027] });
  });

  test("an emulator without trustedIssuers accepts no assertion", async () => {
    await using plain = await startEntraEmulator();
    plain.registerApplication({ clientId: "wl-app", clientSecret: "unused-secret" });
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "wl-app",
      scope: "https://storage.azure.com/.default",
      client_assertion_type: jwtBearer,
      client_assertion: plain.mintToken({
        audience: "api://AzureADTokenExchange",
        tenant,
        claims: { iss: issuer },
      }),
    });

    const reply = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${plain.authorityHost}/${tenant}/oauth2/v2.0/token`,
        {
          method: "POST",
          ca: plain.caCertificate,
          headers: { "content-type": "application/x-www-form-urlencoded" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end(form.toString());
    });

    expect(reply).toBe(401);
  });

  test("trustedIssuers must be a list of issuer strings", async () => {
    await expect(startEntraEmulator({ trustedIssuers: [""] })).rejects.toThrow(/trustedIssuers/);
  });
});
