/**
 * A request-scoped `AbortSignal` passed through a handler to many concurrent `getToken`
 * calls: the signal gets one `abort` listener, not one per call (Node warns with
 * `MaxListenersExceededWarning` past 10), and none is left once the calls settle.
 */
import { getEventListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { isAbortError } from "../../src/errors/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";

const tenant = "d0000000-0000-4000-8000-00000000000d";
const secret = "CANARY-signal-5ecret-0c4e";
const scopes = [1, 2, 3, 4, 5].map((n) => `https://resource-${n}.example/.default`);

let emulator: EntraEmulator;
let counter = 0;

beforeAll(async () => {
  emulator = await startEntraEmulator();
});
afterAll(async () => {
  await emulator.stop();
});

function credentialFor(): ClientSecretCredential {
  const clientId = `signal-${++counter}`;
  emulator.registerApplication({ clientId, clientSecret: secret });
  return new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
  });
}

/** Collects the `MaxListenersExceededWarning`s emitted while `run` runs. */
async function warningsDuring(run: () => Promise<void>): Promise<string[]> {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(`${warning.name}: ${warning.message}`);
  };
  process.on("warning", onWarning);
  try {
    await run();
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", onWarning);
  }
  return warnings.filter((warning) => warning.startsWith("MaxListenersExceededWarning"));
}

describe("one AbortSignal shared by many concurrent getToken calls", () => {
  it("adds one abort listener while they wait and none afterwards, without a warning", async () => {
    const credential = credentialFor();
    const signal = new AbortController().signal;
    emulator.setLatency(200);
    let listenersWhileWaiting = -1;

    const warnings = await warningsDuring(async () => {
      const calls = Array.from({ length: 60 }, (_, index) =>
        credential.getToken(scopes[index % scopes.length]!, { abortSignal: signal }),
      );
      listenersWhileWaiting = getEventListeners(signal, "abort").length;
      const tokens = await Promise.all(calls);
      expect(new Set(tokens.map((token) => token.token)).size).toBe(scopes.length);
    });

    emulator.setLatency(0);
    await credential.close();
    expect(listenersWhileWaiting).toBe(1);
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    expect(warnings).toEqual([]);
  });

  it("with a timeout too: aborting the signal rejects every call and leaves nothing attached", async () => {
    const credential = credentialFor();
    const controller = new AbortController();
    emulator.setLatency(2_000);

    const warnings = await warningsDuring(async () => {
      const calls = Array.from({ length: 40 }, (_, index) =>
        credential.getToken(scopes[index % scopes.length]!, {
          abortSignal: controller.signal,
          requestOptions: { timeout: 10_000 },
        }),
      );
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
      controller.abort();
      const outcomes = await Promise.allSettled(calls);
      expect(
        outcomes.every((outcome) => outcome.status === "rejected" && isAbortError(outcome.reason)),
      ).toBe(true);
    });

    emulator.setLatency(0);
    await credential.close();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expect(warnings).toEqual([]);
  });
});
