/**
 * The fault matrix as real processes: for each failure class of `fault-matrix.test.ts`, a
 * one-shot program runs in a child process of its own against the emulator, and the test
 * asserts what it prints and its exit code. Three programs, as users write them:
 *
 * - a script whose only work is `await credential.getToken(scope)`, then print the token;
 * - the same with `await firstValueFrom(credential.token$(scope))`;
 * - the CLI, `rx-identity token --scope ...` (the build in `dist/`).
 *
 * Virtual time proves the engine's timing; only a real process proves its lifetime: with
 * every retry timer unref'd, such a script used to exit 0 and print nothing while a retry
 * after `503` + `Retry-After: 1` was pending. Here transient faults hit the first request(s)
 * only, with short delays (a retry after at most 2 s), so each program must outlive them
 * and print its token; permanent ones fail at once with the typed error. Children run
 * concurrently and are plain `node` on the build (`tsx`'s loader thread keeps a process
 * alive and would hide the bug).
 */
import { spawn } from "node:child_process";
import { writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateLoopbackCertificate } from "../../src/testing/emulator/certificate.js";
import { startEntraEmulator, type EntraEmulator, type FaultSpec } from "../../src/testing/index.js";
import { cleanEnv, lines, projectRoot } from "../cli/run-cli.js";
import {
  certificateCases,
  serveCertificate,
  type CertificateCase,
} from "./support/bad-certificates.js";
import { html503, startGateway, type Gateway } from "./support/gateway.js";

const tenant = "c0000000-0000-4000-8000-00000000000c";
const scope = "https://storage.azure.com/.default";
const secret = "CANARY-one-shot-5ecret-4be1";
/** A child that outlives this is stuck: killed, and the test fails on its exit code. */
const childLimitMs = 15_000;

const preamble = `import { ClientSecretCredential } from "rx-identity";
const credential = ClientSecretCredential.fromEnvironment();
`;

/** The programs under test: how to start each, and what it prints on success. */
const programs = {
  "script await getToken()": {
    command: [
      "--input-type=module",
      "-e",
      `${preamble}const token = await credential.getToken(${JSON.stringify(scope)});
console.log(token.token);`,
    ],
    configurationExit: 1,
  },
  "script await firstValueFrom(token$)": {
    command: [
      "--input-type=module",
      "-e",
      `import { firstValueFrom } from "rxjs";
${preamble}const token = await firstValueFrom(credential.token$(${JSON.stringify(scope)}));
console.log(token.token);`,
    ],
    configurationExit: 1,
  },
  "CLI rx-identity token": {
    command: ["dist/cli/bin.js", "token", "--scope", scope],
    configurationExit: 2,
  },
} as const;
type Program = keyof typeof programs;
const programNames = Object.keys(programs) as Program[];

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runProgram(program: Program, env: NodeJS.ProcessEnv): Promise<Outcome> {
  return runNode([...programs[program].command], env);
}

/** `node ...args` in the project root, killed if it outlives {@link childLimitMs}. */
function runNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const child = spawn(process.execPath, [...args], {
    cwd: projectRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const limit = setTimeout(() => child.kill("SIGKILL"), childLimitMs);
  return new Promise((resolve) => {
    child.once("close", (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    });
  });
}

let emulator: EntraEmulator;
let gateway: Gateway;
let counter = 0;

beforeAll(async () => {
  const tls = await generateLoopbackCertificate();
  emulator = await startEntraEmulator({ tls });
  gateway = await startGateway(emulator.host, tls);
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.stop();
});

/** A fresh application for one program run, and the environment that points at it. */
function application(authorityHost = emulator.authorityHost): {
  clientId: string;
  env: NodeJS.ProcessEnv;
} {
  const clientId = `one-shot-${++counter}`;
  emulator.registerApplication({ clientId, clientSecret: secret });
  return {
    clientId,
    env: cleanEnv({
      AZURE_AUTHORITY_HOST: authorityHost,
      AZURE_TENANT_ID: tenant,
      AZURE_CLIENT_ID: clientId,
      AZURE_CLIENT_SECRET: secret,
      NODE_EXTRA_CA_CERTS: emulator.caFile,
    }),
  };
}

// ---- Transient faults: each program outlives them and prints its token, exit 0 ---------

interface TransientRow {
  readonly name: string;
  /** Token requests the fault answers before the service is back. */
  readonly times: number;
  readonly fault?: () => FaultSpec;
  readonly viaGateway?: true;
}

const transientRows: TransientRow[] = [
  { name: "HTTP 500", times: 2, fault: () => ({ status: 500 }) },
  { name: "HTTP 502", times: 2, fault: () => ({ status: 502 }) },
  { name: "HTTP 503 with Retry-After: 1", times: 1, fault: () => ({ status: 503, retryAfter: 1 }) },
  { name: "HTTP 504", times: 2, fault: () => ({ status: 504 }) },
  {
    name: "HTTP 429 with Retry-After in seconds",
    times: 1,
    fault: () => ({ status: 429, retryAfter: 1 }),
  },
  {
    name: "HTTP 429 with Retry-After as an HTTP-date",
    times: 1,
    // At most 2 s ahead (the date is truncated to the second).
    fault: () => ({ status: 429, retryAfter: new Date(Date.now() + 2_000).toUTCString() }),
  },
  { name: "connection reset (dropped)", times: 2, fault: () => ({ drop: true }) },
  {
    // The 30 s request time limit is too long for a bounded test: the same class (a request
    // left unanswered on an open socket) ends here when the server hangs up after 1.5 s.
    name: "no answer for 1.5 s, then the connection drops",
    times: 1,
    fault: () => ({ delayMs: 1_500, drop: true }),
  },
  { name: "HTML 503 from a gateway", times: 2, viaGateway: true },
];

describe.concurrent.each(transientRows)("$name", (row) => {
  describe.concurrent.each(programNames)("%s", (program) => {
    it(`exit 0, prints the token after ${row.times} failed request${row.times > 1 ? "s" : ""}`, async () => {
      const { clientId, env } = application(
        row.viaGateway === true ? gateway.authorityHost : undefined,
      );
      if (row.viaGateway === true) {
        gateway.fail({ status: 503, body: html503, times: row.times, clientId });
      } else {
        emulator.injectFault({ ...row.fault?.(), match: { clientId }, times: row.times });
      }

      const outcome = await runProgram(program, env);

      expect(outcome.stderr).toBe("");
      expect(outcome.code).toBe(0);
      const printed = lines(outcome.stdout);
      expect(printed).toHaveLength(1);
      expect(emulator.verifyToken(printed[0]!)).toMatchObject({ appid: clientId, tid: tenant });
      // Each failed request, then the one that succeeded (the gateway answered its own).
      const reachedEmulator = row.viaGateway === true ? 1 : row.times + 1;
      expect(emulator.requestCount({ clientId })).toBe(reachedEmulator);
    });
  });
});

// ---- The service refuses, or retries run out: exit 1 at once with the typed error --------

interface RefusedRow {
  readonly name: string;
  /** Sets up the refusal for `clientId`. */
  readonly arrange: (clientId: string) => void;
  readonly error: string;
  readonly status: number;
  readonly aadsts?: number;
}

const refusal =
  (spec: FaultSpec) =>
  (clientId: string): void => {
    emulator.injectFault({ ...spec, match: { clientId }, times: Infinity });
  };

const refusedRows: RefusedRow[] = [
  {
    // Retry-After beyond the 20 s budget for a caller without a token: no retry can help.
    name: "HTTP 503 with Retry-After: 60 (retries run out)",
    arrange: refusal({ status: 503, retryAfter: 60 }),
    error: "temporarily_unavailable",
    status: 503,
    aadsts: 90033,
  },
  {
    name: "malformed JSON",
    arrange: refusal({ malformedJson: true }),
    error: "token_parsing_error",
    status: 200,
  },
  {
    name: "a body without expires_in",
    arrange: refusal({ omitExpiresIn: true }),
    error: "invalid_response",
    status: 200,
  },
  {
    name: "invalid_client (wrong secret)",
    arrange: (clientId) =>
      emulator.registerApplication({ clientId, clientSecret: "the-rotated-one" }),
    error: "invalid_client",
    status: 401,
    aadsts: 7000215,
  },
  {
    name: "expired secret (AADSTS7000222)",
    arrange: (clientId) =>
      emulator.registerApplication({
        clientId,
        clientSecret: secret,
        secretExpiresOn: new Date(Date.now() - 1_000),
      }),
    error: "invalid_client",
    status: 401,
    aadsts: 7000222,
  },
  {
    name: "unknown tenant (AADSTS90002)",
    arrange: refusal({ status: 400, error: "invalid_request", aadsts: 90002 }),
    error: "invalid_request",
    status: 400,
    aadsts: 90002,
  },
  {
    name: "invalid_scope",
    arrange: refusal({ status: 400, error: "invalid_scope", aadsts: 70011 }),
    error: "invalid_scope",
    status: 400,
    aadsts: 70011,
  },
  {
    name: "unauthorized_client",
    arrange: refusal({ status: 400, error: "unauthorized_client", aadsts: 700016 }),
    error: "unauthorized_client",
    status: 400,
    aadsts: 700016,
  },
];

describe.concurrent.each(refusedRows)("$name", (row) => {
  describe.concurrent.each(programNames)("%s", (program) => {
    it(`exit 1 after one request, with ${row.error}${row.aadsts === undefined ? "" : ` AADSTS${row.aadsts}`}`, async () => {
      const { clientId, env } = application();
      row.arrange(clientId);

      const outcome = await runProgram(program, env);

      expect(outcome.code).toBe(1);
      expect(outcome.stdout).toBe("");
      const headline = `AuthenticationError: ${row.error}(status code ${row.status}).`;
      if (program === "CLI rx-identity token") {
        // One line, no stack trace, with the AADSTS code that says what to do.
        const [line, ...more] = lines(outcome.stderr);
        expect(more).toEqual([]);
        expect(line).toContain(`rx-identity: ${headline}`);
        if (row.aadsts !== undefined) expect(line).toContain(`AADSTS${row.aadsts}`);
      } else {
        // An unhandled rejection: Node prints the typed error and exits 1.
        expect(outcome.stderr).toContain(headline);
        if (row.aadsts !== undefined) expect(outcome.stderr).toContain(`AADSTS${row.aadsts}`);
      }
      expect(outcome.stderr).not.toContain(secret);
      expect(emulator.requestCount({ clientId })).toBe(1);
    });
  });
});

// ---- Certificates the client rejects: a configuration error, at once, naming the cure ---

describe.concurrent("TLS certificate failures", () => {
  let cases: CertificateCase[];
  let trustDirectory: string;
  beforeAll(async () => {
    [cases, trustDirectory] = await Promise.all([
      certificateCases(),
      mkdtemp(join(tmpdir(), "rx-identity-trust-")),
    ]);
  });
  afterAll(async () => {
    await rm(trustDirectory, { recursive: true, force: true });
  });

  const names = [
    "self-signed certificate, not trusted",
    "certificate from an unknown issuer",
    "expired certificate",
    "certificate for another host name",
  ];

  describe.each(names)("%s", (name) => {
    describe.concurrent.each(programNames)("%s", (program) => {
      const exit = programs[program].configurationExit;
      it(`exit ${exit} after one connection, naming the certificate problem and the remedy`, async () => {
        const certificateCase = cases.find((candidate) => candidate.name === name)!;
        const server = await serveCertificate(certificateCase);
        try {
          const { env } = application(server.authorityHost);
          if (certificateCase.trust === undefined) {
            delete env["NODE_EXTRA_CA_CERTS"];
          } else {
            const file = join(trustDirectory, `${++counter}.pem`);
            await writeFile(file, certificateCase.trust);
            env["NODE_EXTRA_CA_CERTS"] = file;
          }

          const outcome = await runProgram(program, env);

          expect(outcome.code).toBe(exit);
          expect(outcome.stdout).toBe("");
          expect(outcome.stderr).toContain(
            `CredentialUnavailableError: The authority's TLS certificate was rejected`,
          );
          expect(outcome.stderr).toContain(certificateCase.code);
          if (certificateCase.code === "ERR_TLS_CERT_ALTNAME_INVALID") {
            expect(outcome.stderr).toContain("Use a host name the certificate lists");
          } else {
            for (const remedy of ["NODE_EXTRA_CA_CERTS", "`ca` option", "--ca-file"]) {
              expect(outcome.stderr).toContain(remedy);
            }
          }
          if (program === "CLI rx-identity token") expect(lines(outcome.stderr)).toHaveLength(1);
          // Not retried: the one connection of the first attempt.
          expect(server.connections).toBe(1);
        } finally {
          await server.stop();
        }
      });
    });
  });
});

// ---- reactiveCredential: the same lifetime rule over a wrapped TokenCredential ----------

/** The wrapped credentials of the reactive rows, built from the child's environment. */
const reactiveSources = {
  // @azure/identity's own ClientSecretCredential, trusting the emulator by NODE_EXTRA_CA_CERTS.
  "@azure/identity ClientSecretCredential": `import { ClientSecretCredential } from "@azure/identity";
const env = process.env;
const source = new ClientSecretCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, env.AZURE_CLIENT_SECRET, {
  authorityHost: env.AZURE_AUTHORITY_HOST,
  disableInstanceDiscovery: true,
});`,
  // A user's own credential that fails FAILURES times with a 503, then answers (or, with
  // UNAVAILABLE set, says it cannot work here). The engine's retry timers are unref'd: only
  // the keep-alive of the awaited call holds the process through them.
  "a user's own TokenCredential": `let calls = 0;
const source = {
  async getToken() {
    calls += 1;
    if (process.env.UNAVAILABLE) {
      const error = new Error("ManagedIdentityCredential: no managed identity endpoint found.");
      error.name = "CredentialUnavailableError";
      throw error;
    }
    if (calls <= Number(process.env.FAILURES ?? 0)) {
      throw Object.assign(new Error("endpoint busy"), { name: "AuthenticationError", statusCode: 503 });
    }
    return { token: "token-after-" + calls + "-calls", expiresOnTimestamp: Date.now() + 3600000, tokenType: "Bearer" };
  },
};`,
} as const;
type ReactiveSource = keyof typeof reactiveSources;

const reactiveWaits = {
  "script await getToken()": `const token = await credential.getToken(${JSON.stringify(scope)});`,
  "script await firstValueFrom(token$)": `const token = await firstValueFrom(credential.token$(${JSON.stringify(scope)}));`,
} as const;

function runReactive(
  source: ReactiveSource,
  wait: keyof typeof reactiveWaits,
  env: NodeJS.ProcessEnv,
): Promise<Outcome> {
  const script = `import { firstValueFrom } from "rxjs";
import { reactiveCredential } from "rx-identity";
${reactiveSources[source]}
const credential = reactiveCredential(source);
${reactiveWaits[wait]}
console.log(token.token);`;
  return runNode(["--input-type=module", "-e", script], env);
}

describe.concurrent.each(Object.keys(reactiveWaits) as (keyof typeof reactiveWaits)[])(
  "reactiveCredential, %s",
  (wait) => {
    it("over @azure/identity: exit 0 with the token after a 503 with Retry-After: 1", async () => {
      const { clientId, env } = application();
      emulator.injectFault({ status: 503, retryAfter: 1, match: { clientId }, times: 1 });

      const outcome = await runReactive("@azure/identity ClientSecretCredential", wait, env);

      expect(outcome.stderr).toBe("");
      expect(outcome.code).toBe(0);
      const printed = lines(outcome.stdout);
      expect(printed).toHaveLength(1);
      expect(emulator.verifyToken(printed[0]!)).toMatchObject({ appid: clientId, tid: tenant });
      expect(emulator.requestCount({ clientId })).toBe(2);
    });

    it("over @azure/identity: a refused secret exits 1 with its own error, after one request", async () => {
      const { clientId, env } = application();
      emulator.registerApplication({ clientId, clientSecret: "the-rotated-one" });

      const outcome = await runReactive("@azure/identity ClientSecretCredential", wait, env);

      expect(outcome.code).toBe(1);
      expect(outcome.stdout).toBe("");
      // @azure/identity's own error class, as the bare credential throws it.
      expect(outcome.stderr).toContain("AuthenticationRequiredError");
      expect(outcome.stderr).toContain("AADSTS7000215");
      expect(outcome.stderr).not.toContain(secret);
      expect(emulator.requestCount({ clientId })).toBe(1);
    });

    it("over a user's own credential: exit 0 with the token after two 503s retried by the engine", async () => {
      const outcome = await runReactive(
        "a user's own TokenCredential",
        wait,
        cleanEnv({ FAILURES: "2" }),
      );

      expect(outcome.stderr).toBe("");
      expect(outcome.code).toBe(0);
      expect(lines(outcome.stdout)).toEqual(["token-after-3-calls"]);
    });

    it("over a user's own credential: its CredentialUnavailableError exits 1 at once, as it was", async () => {
      const outcome = await runReactive(
        "a user's own TokenCredential",
        wait,
        cleanEnv({ UNAVAILABLE: "1" }),
      );

      expect(outcome.code).toBe(1);
      expect(outcome.stdout).toBe("");
      // Node prints the unhandled rejection: the source's own error, name and message.
      expect(outcome.stderr).toContain(
        "[CredentialUnavailableError]: ManagedIdentityCredential: no managed identity endpoint found.",
      );
    });
  },
);
