import type { AccessToken } from "@azure/core-auth";
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { Subscription } from "rxjs";
import type { ClientSecretCredential } from "../../credential/index.js";
import type { EntraEmulator } from "../../testing/index.js";
import { parseCommandArgs, parseNumberFlag, UsageError } from "../support/args.js";
import type { Options } from "../support/args.js";
import type { Command } from "../support/context.js";
import {
  colourWanted,
  createPalette,
  decodeJwtPayload,
  formatDuration,
  formatElapsed,
  redactToken,
  type Palette,
} from "../support/format.js";
import { formatStatus } from "../support/observe.js";

const help = `Usage: npm start -- [options]     (or: rx-identity demo [options])

Starts the embedded Entra ID emulator and a ClientSecretCredential against it, subscribes to
token$ for two scopes with short-lived tokens, and prints a live timeline: each token as it
arrives (redacted), when it refreshes and expires, the requests the emulator saw, a burst of
concurrent getToken calls answered by one request, a brief outage that subscribers never
notice, and a claims request. Ends by itself with a summary.

Options:
  --duration S       how long to run, in seconds (default: 30)
  --lifetime S       token lifetime, in seconds (default: 2/3 of the duration, 8 to 60)
  --refresh-in S     refresh_in sent with tokens, in seconds (default: half the lifetime)
  --burst N          concurrent getToken calls in the burst (default: 100)
  -h, --help         show this help
`;

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /**
   * How long the demo runs, in seconds.
   * @default 30
   */
  readonly durationSeconds?: number;
  /**
   * Lifetime of the emulator's tokens, in seconds.
   * @default two thirds of the duration, clamped to 8..60
   */
  readonly lifetimeSeconds?: number;
  /**
   * `refresh_in` of the emulator's tokens, in seconds.
   * @default half the lifetime
   */
  readonly refreshInSeconds?: number;
  /**
   * Number of concurrent `getToken` calls on a cold key.
   * @default 100
   */
  readonly burst?: number;
  /** Where the timeline goes. */
  readonly out: NodeJS.WritableStream;
  /**
   * Colours.
   * @default no colour
   */
  readonly palette?: Palette;
  /**
   * Stops the demo early (it still prints its summary).
   * @default never
   */
  readonly signal?: AbortSignal;
}

/** What the demo observed, also printed as its summary line. */
export interface DemoSummary {
  readonly elapsedMs: number;
  /** Tokens delivered to the `token$` subscribers. */
  readonly tokensDelivered: number;
  /** Token requests the emulator answered in total. */
  readonly requests: number;
  /** Requests answered 503 during the outage. */
  readonly outageFailures: number;
  readonly burstCalls: number;
  /** Requests the burst caused (one, by single-flight). */
  readonly burstRequests: number;
  /** Requests that carried the demo's claims. */
  readonly claimsRequests: number;
  /** Error notifications the subscribers received (zero). */
  readonly subscriberErrors: number;
}

const SCOPES = {
  storage: "https://storage.azure.com/.default",
  graph: "https://graph.microsoft.com/.default",
  vault: "https://vault.azure.net/.default",
} as const;

// A claims request as a resource's CAE challenge would ask for it.
const CLAIMS = JSON.stringify({
  access_token: { nbf: { essential: true, value: String(Math.floor(Date.now() / 1_000)) } },
});

/** Resolves after `ms`, or at once when `signal` aborts. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted === true) return;
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch {
    // Aborted: the demo moves on to its summary.
  }
}

/**
 * The `npm start` demo: a live timeline of rx-identity against the embedded emulator.
 * Resolves to what it observed once it has closed the credential and stopped the emulator.
 *
 * @example
 * ```ts
 * const summary = await runDemo({ durationSeconds: 10, out: process.stdout });
 * console.log(summary.burstRequests); // 1
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { out, signal } = options;
  const p = options.palette ?? createPalette(false);
  const durationMs = (options.durationSeconds ?? 30) * 1_000;
  const lifetime =
    options.lifetimeSeconds ??
    Math.min(60, Math.max(8, Math.round(((options.durationSeconds ?? 30) * 2) / 3)));
  const refreshIn = options.refreshInSeconds ?? Math.max(1, Math.floor(lifetime / 2));
  if (refreshIn >= lifetime) {
    throw new UsageError(
      `--refresh-in (${refreshIn}) must be shorter than --lifetime (${lifetime})`,
    );
  }
  const burst = options.burst ?? 100;

  const started = Date.now();
  const elapsed = (): number => Date.now() - started;
  const line = (tag: string, colour: (text: string) => string, text: string): void => {
    out.write(`${p.dim(formatElapsed(elapsed()))} ${colour(tag.padEnd(9))} ${text}\n`);
  };

  const tenant = randomUUID();
  const clientId = randomUUID();
  // Generated here and never printed: the secret only travels to the emulator.
  const clientSecret = randomBytes(24).toString("base64url");

  let emulator: EntraEmulator | undefined;
  let credential: ClientSecretCredential | undefined;
  const subscriptions: Subscription[] = [];
  let tokensDelivered = 0;
  let subscriberErrors = 0;
  let outageFailures = 0;
  let burstRequests = 0;
  let claimsRequests = 0;

  try {
    // Loaded on demand so that --help and usage errors answer without loading MSAL.
    const [{ ClientSecretCredential }, { startEntraEmulator }] = await Promise.all([
      import("../../credential/index.js"),
      import("../../testing/index.js"),
    ]);
    emulator = await startEntraEmulator({
      tokenLifetimeSeconds: lifetime,
      refreshInSeconds: refreshIn,
    });
    emulator.registerApplication({ clientId, clientSecret });
    const em = emulator;
    line(
      "emulator",
      p.cyan,
      `Entra ID emulator on ${em.authorityHost}: tokens live ${lifetime}s, refresh_in ${refreshIn}s; ` +
        `demo runs ${formatDuration(durationMs)}`,
    );
    credential = new ClientSecretCredential(tenant, clientId, clientSecret, {
      authorityHost: em.authorityHost,
      // Trust the emulator's certificate for this credential only.
      ca: em.caCertificate,
      disableInstanceDiscovery: true,
    });
    const cred = credential;
    const showStatus = (): void => {
      for (const text of formatStatus(cred.status())) {
        line("status", p.cyan, text.replace(/^status /, ""));
      }
    };
    line(
      "setup",
      p.cyan,
      `ClientSecretCredential(tenant ${tenant.slice(0, 8)}…, client ${clientId.slice(0, 8)}…)`,
    );

    // Two long-lived subscribers, one per scope.
    const firstTokens: Promise<void>[] = [];
    for (const [label, scope] of [
      ["storage", SCOPES.storage],
      ["graph", SCOPES.graph],
    ] as const) {
      let count = 0;
      let first: () => void = () => undefined;
      firstTokens.push(new Promise<void>((resolve) => (first = resolve)));
      line("subscribe", p.cyan, `token$("${scope}")`);
      subscriptions.push(
        cred.token$(scope).subscribe({
          next: (token: AccessToken) => {
            count += 1;
            tokensDelivered += 1;
            first();
            const now = Date.now();
            const aud = decodeJwtPayload(token.token)?.["aud"];
            const refresh =
              token.refreshAfterTimestamp === undefined
                ? ""
                : `refresh in ${formatDuration(token.refreshAfterTimestamp - now)}, `;
            line(
              "token",
              p.green,
              `${label} #${count} ${redactToken(token.token)} aud=${String(aud)} ` +
                `${refresh}expires in ${formatDuration(token.expiresOnTimestamp - now)} ` +
                p.dim(`· emulator requests so far: ${em.requestCount()}`),
            );
          },
          error: (error: unknown) => {
            subscriberErrors += 1;
            line(
              "error",
              p.red,
              `${label} subscriber got ${error instanceof Error ? error.name : "an error"}`,
            );
          },
        }),
      );
    }

    // Later steps are timed from the first tokens, whose refresh times they aim at.
    await Promise.race([Promise.all(firstTokens), pause(lifetime * 1_000, signal)]);
    const anchor = elapsed();

    // 1. A burst of concurrent getToken calls on a cold key: single-flight makes one request.
    await pause(anchor + 1_000 - elapsed(), signal);
    if (signal?.aborted !== true) {
      const before = em.requestCount({ scope: SCOPES.vault });
      const tokens = await Promise.all(
        Array.from({ length: burst }, () => cred.getToken(SCOPES.vault)),
      );
      burstRequests = em.requestCount({ scope: SCOPES.vault }) - before;
      const distinct = new Set(tokens.map((token) => token.token)).size;
      line(
        "burst",
        p.magenta,
        `${burst} concurrent getToken("${SCOPES.vault}") on a cold key -> ` +
          `${burstRequests} request${burstRequests === 1 ? "" : "s"}, ${distinct} distinct token${distinct === 1 ? "" : "s"}`,
      );
    }

    // 2. An outage just before the first refresh: retries with backoff bridge it while the
    // current tokens are still usable, so subscribers see no error.
    // Refreshes are due between 90% and 100% of refresh_in after issue (the jitter), so an
    // outage from 85% on catches the first refresh of both subscribers.
    const outageStart = anchor + Math.max(1_500, refreshIn * 850);
    const outageMs = Math.min(3_000, ((lifetime - refreshIn) * 1_000) / 4);
    await pause(outageStart - elapsed(), signal);
    if (signal?.aborted !== true && outageStart + outageMs < durationMs) {
      const fault = em.injectFault({ status: 503, times: Number.POSITIVE_INFINITY });
      line(
        "outage",
        p.yellow,
        `the emulator answers 503 to every token request for the next ${formatDuration(outageMs)}`,
      );
      await pause(outageMs, signal);
      // What a health check reads mid-outage: usable-until, failures in a row, stale serving.
      showStatus();
      fault.remove();
      outageFailures = fault.hits;
      line(
        "outage",
        p.yellow,
        `over: ${outageFailures} request${outageFailures === 1 ? "" : "s"} answered 503, ` +
          `subscribers saw ${subscriberErrors} error${subscriberErrors === 1 ? "" : "s"}`,
      );
    }

    // 3. A claims request (as after a CAE challenge): it always goes to the network.
    await pause(Math.min(elapsed() + 1_000, durationMs - 1_000) - elapsed(), signal);
    if (signal?.aborted !== true) {
      const before = em.requestCount({ claims: CLAIMS });
      const token = await cred.getToken(SCOPES.storage, { claims: CLAIMS });
      claimsRequests = em.requestCount({ claims: CLAIMS }) - before;
      line(
        "claims",
        p.magenta,
        `getToken("${SCOPES.storage}", { claims }) -> ${redactToken(token.token)}, ` +
          `${claimsRequests} request carrying claims ${CLAIMS}`,
      );
    }

    await pause(durationMs - elapsed(), signal);
    showStatus();
  } finally {
    for (const subscription of subscriptions) subscription.unsubscribe();
    await credential?.close();
    await emulator?.stop();
  }

  const summary: DemoSummary = {
    elapsedMs: elapsed(),
    tokensDelivered,
    requests: emulator?.requestCount() ?? 0,
    outageFailures,
    burstCalls: burst,
    burstRequests,
    claimsRequests,
    subscriberErrors,
  };
  line(
    "summary",
    p.bold,
    `ran ${formatDuration(summary.elapsedMs)}: ${summary.tokensDelivered} tokens delivered to 2 subscribers; ` +
      `${summary.requests} token requests (${summary.outageFailures} failed during the outage); ` +
      `burst of ${summary.burstCalls} getToken calls -> ${summary.burstRequests} request${summary.burstRequests === 1 ? "" : "s"}; ` +
      `${summary.claimsRequests} claims request${summary.claimsRequests === 1 ? "" : "s"}; ${summary.subscriberErrors} subscriber errors`,
  );
  return summary;
}

const options = {
  duration: { type: "string" },
  lifetime: { type: "string" },
  "refresh-in": { type: "string" },
  burst: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/**
 * `rx-identity demo` (and `npm start`): the live timeline of {@link runDemo}.
 *
 * @example
 * ```sh
 * npm start -- --duration 120
 * ```
 */
export const demoCommand: Command = {
  name: "demo",
  summary: "the npm start demo: a live timeline against the embedded emulator",
  help,
  synopsis: "rx-identity demo [--duration S] [--lifetime S] [--refresh-in S] [--burst N]",
  options,
  async run({ argv, env, stdout, signal }) {
    const { values } = parseCommandArgs("demo", argv, options);
    if (values.help === true) {
      stdout.write(help);
      return 0;
    }
    const num = (flag: string, value: string | undefined, min: number): number | undefined =>
      value === undefined ? undefined : parseNumberFlag(flag, value, { min, integer: true });
    const durationSeconds = num("--duration", values.duration, 3);
    const lifetimeSeconds = num("--lifetime", values.lifetime, 2);
    const refreshInSeconds = num("--refresh-in", values["refresh-in"], 1);
    const burst = num("--burst", values.burst, 1);
    const summary = await runDemo({
      out: stdout,
      palette: createPalette(colourWanted(stdout, env)),
      signal,
      ...(durationSeconds === undefined ? {} : { durationSeconds }),
      ...(lifetimeSeconds === undefined ? {} : { lifetimeSeconds }),
      ...(refreshInSeconds === undefined ? {} : { refreshInSeconds }),
      ...(burst === undefined ? {} : { burst }),
    });
    return summary.subscriberErrors === 0 && summary.burstRequests === 1 ? 0 : 1;
  },
};
