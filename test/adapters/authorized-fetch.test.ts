/**
 * `authorizedFetch` against a real HTTPS resource server on loopback, with tokens from the
 * Entra ID emulator through the real MSAL. The scenarios run in a child process using the
 * platform's own `fetch`, which trusts the test certificate only through
 * `NODE_EXTRA_CA_CERTS` (Node reads it at start). The server records every request it got,
 * the emulator every token request: the assertions count both.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential, authorizedFetch, isInvalidArgumentError } from "rx-identity";
import { startEntraEmulator, type EntraEmulator } from "rx-identity/testing";
import { generateLoopbackCertificate } from "../../src/testing/emulator/certificate.js";
import { cleanEnv, startCli } from "../cli/run-cli.js";
import { tenantA } from "../support/emulator.js";

const scope = "https://api.example.test/.default";
const clientId = randomUUID();
const clientSecret = `secret-${randomUUID()}`;
const challengeClaims = JSON.stringify({
  access_token: { nbf: { essential: true, value: "1700000000" } },
});
const challenge = (claims: string): string =>
  `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="${Buffer.from(claims).toString("base64")}"`;

interface Seen {
  readonly path: string;
  readonly jti: string | undefined;
  readonly cae: boolean;
  readonly body: string;
  readonly status: number;
}

interface Outcome {
  readonly scenario: string;
  readonly status?: number;
  readonly body?: string;
  readonly error?: { name?: string; code?: string; claims?: string };
}

let emulator: EntraEmulator;
let server: Server;
let resource: string;
const seen: Seen[] = [];
const outcomes = new Map<string, Outcome>();
let stderr = "";

/** Token requests the emulator got whose claims ask for `access_token.nbf`. */
function claimsRequests(): { claims: unknown; cae: boolean }[] {
  return emulator.requests
    .filter((r) => r.claims !== undefined)
    .map((r) => ({
      claims: JSON.parse(r.claims as string),
      cae: r.clientCapabilities.includes("cp1"),
    }));
}

const onPath = (path: string): Seen[] => seen.filter((s) => s.path === path);

beforeAll(async () => {
  // One certificate for the emulator and the resource server: its caFile trusts both.
  const tls = await generateLoopbackCertificate();
  emulator = await startEntraEmulator({ tls });
  emulator.registerApplication({ clientId, clientSecret, tenants: [tenantA] });
  const revoked = new Set<string>();
  const answered = new Map<string, number>();
  server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = req.url ?? "/";
      const body = Buffer.concat(chunks).toString("utf8");
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      let payload: Record<string, unknown> | undefined;
      try {
        payload = bearer === undefined ? undefined : emulator.verifyToken(bearer);
      } catch {
        payload = undefined;
      }
      const jti = payload?.["jti"] as string | undefined;
      const cae = ((payload?.["xms_cc"] as string[] | undefined) ?? []).includes("cp1");
      const count = (answered.get(path) ?? 0) + 1;
      answered.set(path, count);
      const reply = (status: number, headers: Record<string, string> = {}): void => {
        seen.push({ path, jti, cae, body, status });
        res.writeHead(status, { "content-type": "text/plain", ...headers });
        res.end(status === 200 ? `ok ${body}`.trim() : "unauthorized");
      };
      if (payload === undefined || jti === undefined) return reply(401);
      switch (path) {
        case "/claims-challenge":
          // A CAE resource: a revoked or non-CAE token gets the claims challenge.
          if (revoked.has(jti) || !cae) {
            revoked.add(jti);
            return reply(401, { "www-authenticate": challenge(challengeClaims) });
          }
          return reply(200);
        case "/plain-401":
          // Refuses the first token it sees, with no claims; accepts any other.
          if (count === 1) revoked.add(jti);
          if (revoked.has(jti)) return reply(401, { "www-authenticate": 'Bearer realm=""' });
          return reply(200);
        case "/always-challenge":
          return reply(401, { "www-authenticate": challenge(challengeClaims) });
        case "/always-401":
          return reply(401);
        case "/stream-body":
          return reply(401);
        case "/bad-claims":
          return reply(401, {
            "www-authenticate": 'Bearer error="insufficient_claims", claims="!!not-base64!!"',
          });
        default:
          return reply(404);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  resource = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fixture = fileURLToPath(new URL("./fixtures/fetch-scenarios.ts", import.meta.url));
  const run = startCli(
    [
      JSON.stringify({
        authorityHost: emulator.authorityHost,
        tenantId: tenantA,
        clientId,
        clientSecret,
        resource,
        scope,
      }),
    ],
    cleanEnv({ NODE_EXTRA_CA_CERTS: emulator.caFile }),
    [process.execPath, "--import", "tsx", fixture],
  );
  const result = await run.exited;
  stderr = result.stderr;
  for (const line of result.stdout.split("\n").filter((l) => l.trim() !== "")) {
    const outcome = JSON.parse(line) as Outcome;
    outcomes.set(outcome.scenario, outcome);
  }
});

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await emulator?.stop();
});

describe("authorizedFetch with the platform's fetch over HTTPS", () => {
  it("ran every scenario in the child process", () => {
    expect(stderr).toBe("");
    expect([...outcomes.keys()]).toEqual([
      "claims-challenge",
      "claims-challenge-again",
      "plain-401",
      "always-challenge",
      "always-401",
      "stream-body",
      "bad-claims",
    ]);
  });

  it("answers a CAE claims challenge: one token request with those claims and CAE, one retry, 200", () => {
    expect(outcomes.get("claims-challenge")).toMatchObject({ status: 200, body: "ok" });
    const [first, second, third] = onPath("/claims-challenge");
    expect(first).toMatchObject({ status: 401, cae: false });
    expect(second).toMatchObject({ status: 200, cae: true });
    expect(second?.jti).not.toBe(first?.jti);
    // The challenge's claims reached Entra ID as they were, with client capability cp1.
    expect(claimsRequests()[0]).toEqual({ claims: JSON.parse(challengeClaims), cae: true });
    const caeTokenRequests = claimsRequests().filter((r) => r.cae).length;
    console.log(
      `claims challenge: resource answered ${first?.status} then ${second?.status} (2 requests, 1 retry); token requests with the claims and cp1 for this call: ${caeTokenRequests - 1 /* the always-challenge scenario's own */}`,
    );
    // The next call sends the claims token at once: no second 401, no new token request.
    expect(outcomes.get("claims-challenge-again")).toMatchObject({ status: 200 });
    expect(third).toMatchObject({ status: 200, jti: second?.jti });
  });

  it("answers a plain 401 with a fresh token, resending a string body, once", () => {
    expect(outcomes.get("plain-401")).toMatchObject({ status: 200, body: "ok resent body" });
    const requests = onPath("/plain-401");
    expect(requests.map((r) => r.status)).toEqual([401, 200]);
    expect(requests.map((r) => r.body)).toEqual(["resent body", "resent body"]);
    expect(requests[1]?.jti).not.toBe(requests[0]?.jti);
    // The fresh token was asked for with an "issued after now" demand.
    const nbf = claimsRequests().filter((r) => !r.cae);
    expect(nbf.length).toBeGreaterThanOrEqual(1);
    expect(nbf[0]?.claims).toMatchObject({ access_token: { nbf: { essential: true } } });
  });

  it("never retries more than once: a second challenge or 401 is returned as it is", () => {
    expect(outcomes.get("always-challenge")).toMatchObject({ status: 401 });
    expect(onPath("/always-challenge")).toHaveLength(2);
    expect(outcomes.get("always-401")).toMatchObject({ status: 401 });
    expect(onPath("/always-401")).toHaveLength(2);
  });

  it("does not retry a request whose body is a stream", () => {
    expect(outcomes.get("stream-body")).toMatchObject({ status: 401 });
    expect(onPath("/stream-body").map((r) => r.body)).toEqual(["streamed body"]);
  });

  it("rejects an unsatisfiable challenge with ClaimsChallengeError, after one request", () => {
    expect(outcomes.get("bad-claims")?.error).toMatchObject({
      name: "ClaimsChallengeError",
      code: "ERR_CLAIMS_CHALLENGE",
    });
    expect(onPath("/bad-claims")).toHaveLength(1);
  });
});

describe("authorizedFetch bad input", () => {
  it("fails at creation for a missing credential or a bad scope, and never sends a token over http:", async () => {
    const credential = new ClientSecretCredential(tenantA, clientId, clientSecret, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    const before = emulator.requestCount();
    expect(() => authorizedFetch(undefined as never, scope)).toThrow(/TokenCredential/);
    expect(() => authorizedFetch(credential, "two scopes")).toThrow(/whitespace/);
    expect(() => authorizedFetch(credential, [])).toThrow(/at least one scope/);
    const api = authorizedFetch(credential, scope);
    const insecure = await api("http://127.0.0.1:9/resource").catch((e: unknown) => e);
    expect(isInvalidArgumentError(insecure)).toBe(true);
    expect((insecure as Error).message).toMatch(/clear text/);
    const relative = await api("/relative").catch((e: unknown) => e);
    expect(isInvalidArgumentError(relative)).toBe(true);
    expect(emulator.requestCount()).toBe(before);
    await credential.close();
  });
});
