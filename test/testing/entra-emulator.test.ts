import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEntraEmulator } from "../../src/testing/index.js";
import type { EntraEmulator } from "../../src/testing/index.js";
import { msalAgainst, postToken, storageScope, tenantA, tenantB } from "../support/emulator.js";

const clientId = "11111111-1111-4111-8111-111111111111";
const clientSecret = "correct-horse-battery-staple";

describe("startEntraEmulator with the real @azure/msal-node", () => {
  let emulator: EntraEmulator;

  beforeAll(async () => {
    emulator = await startEntraEmulator({ refreshInSeconds: 1800 });
    emulator.registerApplication({ clientId, clientSecret });
  });
  afterAll(() => emulator.stop());

  it("issues an RS256 token whose claims MSAL and a resource would check", async () => {
    const msal = msalAgainst(emulator, { clientId, clientSecret });
    const before = Math.floor(Date.now() / 1000);

    const result = await msal.acquire();
    msal.close();

    const claims = emulator.verifyToken(result.accessToken);
    expect(claims).toMatchObject({
      aud: "https://storage.azure.com",
      iss: `https://sts.windows.net/${tenantA}/`,
      tid: tenantA,
      appid: clientId,
    });
    expect(claims["oid"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims["jti"]).toEqual(expect.any(String));
    expect(claims["iat"]).toBeGreaterThanOrEqual(before);
    expect(claims["nbf"]).toBe(claims["iat"]);
    expect(claims["exp"]).toBe((claims["iat"] as number) + 3599);
    // MSAL computes expiresOn from its own clock at receipt (whole seconds) plus
    // expires_in, so it may land one second after the token's exp.
    const msalExpiry = result.expiresOn!.getTime() - (claims["exp"] as number) * 1000;
    expect([0, 1000]).toContain(msalExpiry);
    expect(result.refreshOn).toBeInstanceOf(Date);
    expect(result.tokenType).toBe("Bearer");
  });

  it("answers token_type, expires_in, ext_expires_in and refresh_in", async () => {
    const msal = msalAgainst(emulator, { clientId, clientSecret });

    const response = await postToken(emulator, msal.networkClient, {
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: clientSecret,
      scope: "api://my-api/.default",
    });
    msal.close();

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      token_type: "Bearer",
      expires_in: 3599,
      ext_expires_in: 3599,
      refresh_in: 1800,
    });
    expect(emulator.verifyToken(response.body["access_token"] as string)["aud"]).toBe(
      "api://my-api",
    );
    // Idle connections outlive any client's keep-alive (DESIGN.md facts).
    expect(response.headers["keep-alive"]).toBe("timeout=65");
  });

  it("accepts the secret in HTTP Basic as well as in the form body", async () => {
    const msal = msalAgainst(emulator, { clientId, clientSecret });
    const basic = (secret: string) =>
      `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`;
    const form = { grant_type: "client_credentials", scope: storageScope };

    const good = await postToken(emulator, msal.networkClient, form, {
      headers: { authorization: basic(clientSecret) },
    });
    const bad = await postToken(emulator, msal.networkClient, form, {
      headers: { authorization: basic("wrong") },
    });
    msal.close();

    expect(good.status).toBe(200);
    expect(bad.status).toBe(401);
    expect(bad.body["error_codes"]).toEqual([7000215]);
    expect(emulator.requests.slice(-2).map((request) => request.authMethod)).toEqual([
      "basic",
      "basic",
    ]);
  });

  it("records CAE client capability cp1 and puts xms_cc in the token", async () => {
    const msal = msalAgainst(emulator, { clientId, clientSecret, tenant: tenantB, cae: true });

    const result = await msal.acquire();
    msal.close();

    expect(emulator.verifyToken(result.accessToken)["xms_cc"]).toEqual(["cp1"]);
    expect(emulator.requests.at(-1)).toMatchObject({
      tenant: tenantB,
      clientCapabilities: ["cp1"],
      claims: undefined,
      authMethod: "post",
      status: 200,
    });
  });

  it("never shows a registered secret in inspect, JSON or its request log", () => {
    const shown = [
      inspect(emulator, { depth: 10, showHidden: true }),
      JSON.stringify(emulator),
      JSON.stringify(emulator.requests),
    ];

    for (const text of shown) expect(text).not.toContain(clientSecret);
  });

  it("counts requests per tenant, scope and claims", async () => {
    const counter = await startEntraEmulator();
    counter.registerApplication({ clientId, clientSecret });
    const inA = msalAgainst(counter, { clientId, clientSecret, tenant: tenantA });
    const inB = msalAgainst(counter, { clientId, clientSecret, tenant: tenantB, cae: true });
    const claims = JSON.stringify({
      access_token: { nbf: { essential: true, value: "1700000000" } },
    });

    await inA.acquire();
    await inA.acquire();
    await inA.acquire("https://vault.azure.net/.default");
    await inB.acquire();
    await inB.acquire(storageScope, { claims });
    inA.close();
    inB.close();
    await counter.stop();

    expect(counter.requestCount()).toBe(5);
    expect(counter.requestCount({ tenant: tenantA, scope: storageScope })).toBe(2);
    expect(
      counter.requestCount({ tenant: tenantA, scope: "https://vault.azure.net/.default" }),
    ).toBe(1);
    expect(counter.requestCount({ tenant: tenantB.toUpperCase() })).toBe(2);
    expect(counter.requestCount({ tenant: tenantB, claims })).toBe(1);
    expect(
      counter.requestCount({
        claims: { access_token: { nbf: { value: "1700000000", essential: true } } },
      }),
    ).toBe(1);
    expect(counter.requestCount({ claims: null })).toBe(4);
    expect(counter.requestCount({ cae: true })).toBe(2);
    expect(counter.requestCount({ cae: false, status: 200 })).toBe(3);
  });
});

describe("Entra ID errors", () => {
  let emulator: EntraEmulator;
  const expiredId = "22222222-2222-4222-8222-222222222222";
  const singleTenantId = "33333333-3333-4333-8333-333333333333";

  beforeAll(async () => {
    emulator = await startEntraEmulator({ tenants: [tenantA] });
    emulator.registerApplication({ clientId, clientSecret });
    emulator.registerApplication({
      clientId: expiredId,
      clientSecret,
      secretExpiresOn: new Date(Date.now() - 60_000),
    });
    emulator.registerApplication({ clientId: singleTenantId, clientSecret, tenants: [tenantA] });
  });
  afterAll(() => emulator.stop());

  const cases = [
    {
      name: "wrong secret",
      id: clientId,
      secret: "wrong",
      tenant: tenantA,
      scope: storageScope,
      status: 401,
      error: "invalid_client",
      code: 7000215,
    },
    {
      name: "expired secret",
      id: expiredId,
      secret: clientSecret,
      tenant: tenantA,
      scope: storageScope,
      status: 401,
      error: "invalid_client",
      code: 7000222,
    },
    {
      name: "unknown client",
      id: "44444444-4444-4444-8444-444444444444",
      secret: clientSecret,
      tenant: tenantA,
      scope: storageScope,
      status: 400,
      error: "unauthorized_client",
      code: 700016,
    },
    {
      name: "unknown tenant",
      id: clientId,
      secret: clientSecret,
      tenant: "c0000000-0000-4000-8000-00000000000c",
      scope: storageScope,
      status: 400,
      error: "invalid_request",
      code: 90002,
    },
    {
      name: "bad scope",
      id: clientId,
      secret: clientSecret,
      tenant: tenantA,
      scope: "https://storage.azure.com/user_impersonation",
      status: 400,
      error: "invalid_scope",
      code: 70011,
    },
  ] as const;

  it.each(cases)("$name comes back through MSAL as $status $error AADSTS$code", async (c) => {
    const msal = msalAgainst(emulator, {
      clientId: c.id,
      clientSecret: c.secret,
      tenant: c.tenant,
    });

    const failure: unknown = await msal.acquire(c.scope).catch((error: unknown) => error);
    msal.close();

    expect(failure).toMatchObject({
      name: "ServerError",
      errorCode: c.error,
      status: c.status,
      errorNo: c.code,
    });
    expect(emulator.requests.at(-1)?.status).toBe(c.status);
  });

  it("rejects an application used outside its tenants with AADSTS700016", async () => {
    const other = await startEntraEmulator();
    other.registerApplication({ clientId: singleTenantId, clientSecret, tenants: [tenantA] });
    const msal = msalAgainst(other, { clientId: singleTenantId, clientSecret, tenant: tenantB });

    const failure: unknown = await msal.acquire().catch((error: unknown) => error);
    msal.close();
    await other.stop();

    expect(failure).toMatchObject({ errorCode: "unauthorized_client", errorNo: 700016 });
  });

  it("sends Entra-shaped bodies with trace and correlation ids", async () => {
    const msal = msalAgainst(emulator, { clientId, clientSecret });

    const response = await postToken(
      emulator,
      msal.networkClient,
      {
        grant_type: "client_credentials",
        client_id: clientId,
        client_secret: "wrong",
        scope: storageScope,
      },
      { headers: { "client-request-id": "5f8c1b1e-0000-4000-8000-000000000001" } },
    );
    msal.close();

    const body = response.body;
    expect(body).toMatchObject({
      error: "invalid_client",
      error_codes: [7000215],
      correlation_id: "5f8c1b1e-0000-4000-8000-000000000001",
      trace_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      timestamp: expect.any(String),
      error_uri: `${emulator.authorityHost}/error?code=7000215`,
    });
    expect(body["error_description"]).toMatch(
      /^AADSTS7000215: .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: 5f8c1b1e-0000-4000-8000-000000000001\r\nTimestamp: \d{4}-\d\d-\d\d /,
    );
    expect(JSON.stringify(body)).not.toContain("wrong");
  });
});

describe("stop() and certificate trust", () => {
  it("mints tokens for tests that need a wrong or expired one", async () => {
    await using emulator = await startEntraEmulator();

    const token = emulator.mintToken({
      audience: "https://storage.azure.com",
      tenant: tenantA,
      lifetimeSeconds: -60,
      notBefore: new Date("2020-01-01T00:00:00Z"),
      claims: { iss: "https://evil.example/" },
    });

    expect(emulator.verifyToken(token)).toMatchObject({
      aud: "https://storage.azure.com",
      nbf: 1577836800,
      exp: 1577836740,
      iss: "https://evil.example/",
      tid: tenantA,
    });
    expect(() => emulator.verifyToken(`${token.slice(0, -4)}AAAA`)).toThrow(/signature/);
  });

  it("lets a process started with NODE_EXTRA_CA_CERTS=caFile trust it", async () => {
    await using emulator = await startEntraEmulator();
    const url = `${emulator.authorityHost}/${tenantA}/v2.0/.well-known/openid-configuration`;
    const script = `fetch(${JSON.stringify(url)}).then(r => r.json()).then(b => { console.log(b.issuer); }, e => { console.log("FAILED", e.cause?.code ?? e.message); process.exitCode = 1; })`;

    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ["-e", script], {
          env,
          stdio: ["ignore", "pipe", "inherit"],
          timeout: 20_000,
        });
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        child.on("close", (code) => resolve({ code, out: out.trim() }));
      });
    const trusted = await run({ ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile });
    const untrusted = await run({ ...process.env, NODE_EXTRA_CA_CERTS: "" });

    expect(trusted).toEqual({ code: 0, out: `${emulator.authorityHost}/${tenantA}/v2.0` });
    expect(untrusted.code).toBe(1);
    expect(untrusted.out).toMatch(/^FAILED /);
  });

  it("closes every socket, hung ones too, removes caFile, and leaves no handle", async () => {
    const handlesBefore = countNetworkHandles();
    const emulator = await startEntraEmulator();
    emulator.registerApplication({ clientId, clientSecret });
    const msal = msalAgainst(emulator, { clientId, clientSecret });
    await msal.acquire(); // leaves an idle keep-alive connection
    emulator.injectFault({ hang: true });
    const hung = msal.acquire().catch((error: unknown) => error);
    await emulator.waitForRequests(2);

    await emulator.stop();

    expect(await hung).toMatchObject({ errorCode: "network_error" });
    expect(existsSync(emulator.caFile)).toBe(false);
    msal.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(countNetworkHandles()).toBe(handlesBefore);
    await expect(emulator.stop()).resolves.toBeUndefined();
  });
});

function countNetworkHandles(): number {
  return process
    .getActiveResourcesInfo()
    .filter((name) => name === "TCPServerWrap" || name === "TCPSocketWrap" || name === "TLSWrap")
    .length;
}
