/**
 * Secrets: one canary client secret runs through every public path (success, each error
 * class, verbose logging, `util.inspect`, `JSON.stringify`, `cause` chains, the CLI) and
 * must never show up anywhere; tokens show up in logs only redacted. Then a property: CAE
 * and non-CAE tokens, and tokens of different tenants and clients, are never handed across.
 */
import type { AccessToken } from "@azure/core-auth";
import { AzureLogger, setLogLevel } from "@azure/logger";
import { fc } from "@fast-check/vitest";
import { inspect } from "node:util";
import { firstValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { startEntraEmulator, type EntraEmulator, type FaultSpec } from "../../src/testing/index.js";
import { cleanEnv, runCli } from "../cli/run-cli.js";

const canary = "CANARY-7d1e-do-not-leak-93fa";
const tenants = [
  "a0000000-0000-4000-8000-00000000000a",
  "b0000000-0000-4000-8000-00000000000b",
  "c0000000-0000-4000-8000-00000000000c",
] as const;
const scope = "https://storage.azure.com/.default";
const vault = "https://vault.azure.net/.default";

let emulator: EntraEmulator;
beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

function payload(token: AccessToken | string): Record<string, unknown> {
  const text = typeof token === "string" ? token : token.token;
  return JSON.parse(Buffer.from(text.split(".")[1]!, "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
}

/** Every rendering of an error a program might log: message, stack, inspect, JSON, causes. */
function renderings(error: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    out.push(inspect(current, { depth: 20, showHidden: true }));
    if (current instanceof Error) out.push(current.toString());
    try {
      out.push(JSON.stringify(current) ?? "");
    } catch {
      // A cyclic cause cannot be stringified: nothing leaks through it either.
    }
    if (current instanceof Error) {
      out.push(current.stack ?? "", JSON.stringify(Object.getOwnPropertyDescriptors(current)));
    }
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

describe("the canary secret never shows", () => {
  it("on any public path: success, every error class, logs, inspect, JSON, causes and the CLI", async () => {
    const logLines: string[] = [];
    const shown: string[] = [];
    const tokens: string[] = [];
    const original = AzureLogger.log;
    AzureLogger.log = (...args: unknown[]) => {
      logLines.push(args.map((arg) => (typeof arg === "string" ? arg : inspect(arg))).join(" "));
    };
    setLogLevel("verbose");
    const clientId = "canary-app";
    emulator.registerApplication({ clientId, clientSecret: canary });
    // What events$ and status() showed, every event and a status after each request.
    const observed: string[] = [];
    const make = (id = clientId): ClientSecretCredential => {
      const made = new ClientSecretCredential(tenants[0], id, canary, {
        authorityHost: emulator.authorityHost,
        ca: emulator.caCertificate,
        additionallyAllowedTenants: ["*"],
        refresh: { retryBaseMs: 1, retryCapMs: 2, retryWithoutTokenMs: 0 },
      });
      made.events$.subscribe((event) => {
        observed.push(JSON.stringify(event), inspect(event, { depth: 20, showHidden: true }));
        observed.push(JSON.stringify(made.status()));
      });
      return made;
    };
    try {
      // Success on every shape of request.
      const credential = make();
      for (const token of [
        await credential.getToken(scope),
        await credential.getToken([vault]),
        await credential.getToken(scope, { enableCae: true }),
        await credential.getToken(scope, { tenantId: tenants[1] }),
        await credential.getToken(scope, { claims: '{"access_token":{"acrs":{"values":["c1"]}}}' }),
        await firstValueFrom(credential.token$(vault)),
      ]) {
        tokens.push(token.token);
        shown.push(inspect(token), JSON.stringify(token));
      }
      shown.push(
        inspect(credential, { depth: 20, showHidden: true }),
        JSON.stringify(credential),
        inspect(credential),
        JSON.stringify(Object.getOwnPropertyDescriptors(credential)),
      );

      // Every error class the service and the network produce.
      const faults: FaultSpec[] = [
        { status: 500 },
        { status: 503, retryAfter: 1 },
        { status: 429, retryAfter: new Date(Date.now() + 5_000).toUTCString() },
        { drop: true },
        { malformedJson: true },
        { omitExpiresIn: true },
        { status: 401, error: "invalid_client", aadsts: 7000215 },
        { status: 401, error: "invalid_client", aadsts: 7000222 },
        { status: 400, error: "invalid_request", aadsts: 90002 },
        { status: 400, error: "invalid_scope", aadsts: 70011 },
        { status: 400, error: "unauthorized_client", aadsts: 700016 },
        { status: 400, error: "invalid_request", description: `echo of ${canary} by a server` },
      ];
      for (const fault of faults) {
        const c = make();
        emulator.injectFault({ ...fault, match: { clientId }, times: Infinity });
        shown.push(...renderings(await c.getToken(scope).catch((e: unknown) => e)));
        const errors: unknown[] = [];
        c.token$(vault).subscribe({ error: (e: unknown) => errors.push(e) });
        await c.getToken(vault).catch((e: unknown) => errors.push(e));
        for (const error of errors) shown.push(...renderings(error));
        emulator.clearFaults();
        await c.close();
      }
      // The real wrong-secret and expired-secret answers, and a hung request aborted.
      emulator.registerApplication({ clientId: "canary-wrong", clientSecret: "another-one" });
      emulator.registerApplication({
        clientId: "canary-expired",
        clientSecret: canary,
        secretExpiresOn: new Date(Date.now() - 1_000),
      });
      for (const id of ["canary-wrong", "canary-expired"]) {
        const c = make(id);
        shown.push(...renderings(await c.getToken(scope).catch((e: unknown) => e)));
        await c.close();
      }
      emulator.injectFault({ hang: true, match: { clientId } });
      const hung = make();
      shown.push(
        ...renderings(
          await hung
            .getToken(scope, { abortSignal: AbortSignal.timeout(200) })
            .catch((e: unknown) => e),
        ),
      );
      await hung.close();
      // Bad input, and a closed credential.
      for (const call of [
        () => credential.getToken("bad scope"),
        () => credential.getToken(scope, { claims: "[1]" }),
        () => credential.getToken(scope, { tenantId: "../evil" }),
      ]) {
        shown.push(...renderings(await call().catch((e: unknown) => e)));
      }
      shown.push(
        ...renderings(
          (() => {
            try {
              return new ClientSecretCredential(tenants[0], clientId, canary, {
                authorityHost: `https://x:${canary}@evil.com`,
              });
            } catch (error) {
              return error;
            }
          })(),
        ),
      );
      await credential.close();
      shown.push(...renderings(await credential.getToken(scope).catch((e: unknown) => e)));

      // The CLI, with the canary in AZURE_CLIENT_SECRET and verbose logging on.
      const env = cleanEnv({
        AZURE_AUTHORITY_HOST: emulator.authorityHost,
        AZURE_TENANT_ID: tenants[0],
        AZURE_CLIENT_ID: clientId,
        AZURE_CLIENT_SECRET: canary,
        AZURE_LOG_LEVEL: "verbose",
        NODE_EXTRA_CA_CERTS: emulator.caFile,
      });
      const ok = await runCli(["token", "--scope", scope, "--json"], env);
      expect(ok.code).toBe(0);
      const cliToken = (JSON.parse(ok.stdout) as { accessToken: string }).accessToken;
      expect(ok.stderr).not.toContain(cliToken);
      const refused = await runCli(["token", "--scope", scope], {
        ...env,
        AZURE_CLIENT_ID: "canary-wrong",
      });
      expect(refused.code).toBe(1);
      shown.push(ok.stderr, refused.stdout, refused.stderr);
      logLines.push(...ok.stderr.split("\n"), ...refused.stderr.split("\n"));
    } finally {
      AzureLogger.log = original;
      setLogLevel(undefined);
      emulator.clearFaults();
    }

    expect(logLines.join("\n")).toMatch(/acquired tenant=/);
    expect(observed.some((text) => text.includes("acquisition-failed"))).toBe(true);
    // Events and status show that a key has claims, never the claims.
    expect(observed.some((text) => text.includes('"hasClaims":true'))).toBe(true);
    expect(observed.filter((text) => text.includes("acrs"))).toEqual([]);
    for (const token of tokens) {
      expect(observed.filter((text) => text.includes(token.split(".")[2]!))).toEqual([]);
    }
    const leaks = [...shown, ...logLines, ...observed].filter((text) => text.includes(canary));
    expect(leaks).toEqual([]);
    // Tokens appear in logs only redacted: no full token, nor its signature, in any line.
    for (const token of tokens) {
      const signature = token.split(".")[2]!;
      expect(logLines.filter((line) => line.includes(token) || line.includes(signature))).toEqual(
        [],
      );
    }
  });
});

describe("tokens are never handed across tenants, clients or CAE", () => {
  it("random interleaved requests get tokens whose tid, appid and xms_cc match the request (50 runs)", async () => {
    const clients = ["cross-app-1", "cross-app-2"] as const;
    for (const id of clients) emulator.registerApplication({ clientId: id, clientSecret: canary });
    const request = fc.record({
      client: fc.constantFrom(0, 1),
      tenant: fc.constantFrom(0, 1, 2),
      cae: fc.boolean(),
      scope: fc.constantFrom(scope, vault),
      stream: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (requests) => {
        const credentials = clients.map(
          (id) =>
            new ClientSecretCredential(tenants[0], id, canary, {
              authorityHost: emulator.authorityHost,
              ca: emulator.caCertificate,
              additionallyAllowedTenants: ["*"],
            }),
        );
        try {
          const results = await Promise.all(
            requests.map(async (r) => {
              const credential = credentials[r.client]!;
              const options = { tenantId: tenants[r.tenant], enableCae: r.cae };
              const token = r.stream
                ? await firstValueFrom(credential.token$(r.scope, options))
                : await credential.getToken(r.scope, options);
              return { r, claims: payload(token) };
            }),
          );
          for (const { r, claims } of results) {
            expect(claims["tid"]).toBe(tenants[r.tenant]);
            expect(claims["appid"]).toBe(clients[r.client]);
            expect(claims["aud"]).toBe(r.scope.replace("/.default", ""));
            expect(claims["xms_cc"]).toEqual(r.cae ? ["cp1"] : undefined);
          }
        } finally {
          await Promise.all(credentials.map((c) => c.close()));
        }
      }),
      { numRuns: 50 },
    );
    // Each run builds two credentials and makes up to a dozen real HTTPS requests: on a
    // loaded 2-core machine 50 runs took just over 30 s.
  }, 120_000);
});
