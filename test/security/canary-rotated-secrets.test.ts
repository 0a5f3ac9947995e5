/**
 * Secrets across a rotation: an old, a new and a wrong canary secret run through a rotation,
 * a refused secret and its fail-over, with verbose logging on; none of them may show up in
 * a log line, an error (message, stack, inspect, JSON, causes), an event of `events$` (the
 * `secret-rotated` ones name fingerprints), `status()`, or the credential's `util.inspect`
 * and `JSON.stringify`.
 */
import { AzureLogger, setLogLevel } from "@azure/logger";
import { inspect } from "node:util";
import { BehaviorSubject, firstValueFrom, skip } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential, type CredentialEvent } from "../../src/credential/index.js";
import { secretFingerprint } from "../../src/credential/secret-source.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const oldCanary = "CANARY-old-3c9e-do-not-leak";
const newCanary = "CANARY-new-77b1-do-not-leak";
const wrongCanary = "CANARY-wrong-e402-do-not-leak";
const tenant = "e0000000-0000-4000-8000-00000000000e";
const scope = "https://storage.azure.com/.default";

let emulator: EntraEmulator;
beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

function renderings(error: unknown): string[] {
  const out: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth += 1) {
    out.push(inspect(current, { depth: 20, showHidden: true }));
    out.push(JSON.stringify(current) ?? "");
    if (current instanceof Error) out.push(current.stack ?? "", String(current));
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

describe("rotated canary secrets never show", () => {
  it("in logs, errors, inspect or JSON, through a rotation, a refusal and a fail-over", async () => {
    const lines: string[] = [];
    const original = AzureLogger.log;
    AzureLogger.log = (...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === "string" ? arg : inspect(arg))).join(" "));
    };
    setLogLevel("verbose");
    const clientId = "canary-rotation-app";
    emulator.registerApplication({ clientId, clientSecret: oldCanary });
    const secret$ = new BehaviorSubject(oldCanary);
    const credential = new ClientSecretCredential(tenant, clientId, secret$, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    const events: CredentialEvent[] = [];
    const observed: string[] = [];
    credential.events$.subscribe((event) => {
      events.push(event);
      observed.push(JSON.stringify(event), inspect(event, { depth: 20, showHidden: true }));
      observed.push(JSON.stringify(credential.status()));
    });
    const shown: string[] = [];
    try {
      await credential.getToken(scope);
      // A wrong secret: refused, typed error.
      secret$.next(wrongCanary);
      const refused = await credential
        .getToken("https://vault.azure.net/.default")
        .catch((error: unknown) => error);
      shown.push(...renderings(refused));
      // The new secret is mounted and the old one revoked; a request already holding the
      // wrong one fails over to it.
      emulator.addClientSecret(clientId, newCanary);
      emulator.setLatency(150);
      const inFlight = credential.getToken("https://graph.microsoft.com/.default", {
        claims: JSON.stringify({ access_token: { nbf: { essential: true, value: "1" } } }),
      });
      await emulator.waitForRequests(emulator.requests.length + 1);
      secret$.next(newCanary);
      emulator.revokeClientSecret(clientId, oldCanary);
      const failedOver = await inFlight;
      emulator.setLatency(0);
      const stream = firstValueFrom(credential.token$(scope).pipe(skip(0)));
      shown.push(inspect(await stream), inspect(failedOver));
      shown.push(inspect(credential, { depth: 20, showHidden: true }), JSON.stringify(credential));

      expect((refused as Error).name).toBe("AuthenticationError");
      expect(failedOver.token).toMatch(/^ey/);
      expect(lines.some((line) => line.includes("client secret rotated"))).toBe(true);
      expect(lines.some((line) => line.includes("retrying once, at once"))).toBe(true);
      // Both rotations are events naming fingerprints; the log line is written from them.
      const rotations = events.filter(
        (event): event is Extract<CredentialEvent, { type: "secret-rotated" }> =>
          event.type === "secret-rotated",
      );
      expect(rotations.map((event) => [event.previousFingerprint, event.fingerprint])).toEqual([
        [secretFingerprint(oldCanary), secretFingerprint(wrongCanary)],
        [secretFingerprint(wrongCanary), secretFingerprint(newCanary)],
      ]);
      expect(lines.filter((line) => line.includes("client secret rotated"))).toHaveLength(2);
      expect(observed.some((text) => text.includes("acquisition-failed"))).toBe(true);
      for (const text of [...lines, ...shown, ...observed]) {
        expect(text).not.toContain(oldCanary);
        expect(text).not.toContain(newCanary);
        expect(text).not.toContain(wrongCanary);
      }
    } finally {
      emulator.setLatency(0);
      AzureLogger.log = original;
      setLogLevel(undefined);
      await credential.close();
    }
  });
});
