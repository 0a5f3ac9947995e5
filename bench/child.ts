/**
 * The measuring process of the bench. The parent (`bench/index.ts`) starts it with
 * `NODE_EXTRA_CA_CERTS` pointing at the certificate it generated (Node reads that variable
 * only at process start, and `@azure/identity` has no per-client CA option) and with
 * `--expose-gc`; this process starts the emulator with that certificate, runs the measures
 * one after another, and reports each over the IPC channel.
 */
import { randomUUID } from "node:crypto";
import { startEntraEmulator } from "../src/testing/index.js";
import type { Measure, MeasureContext } from "./measure.js";
import { measures } from "./measures/index.js";
import type { ChildConfig, ChildMessage } from "./protocol.js";

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(
        new Error("bench/child.ts must be started by bench/index.ts (it needs an IPC channel)"),
      );
      return;
    }
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

function readConfig(): ChildConfig {
  const raw = process.env["RX_IDENTITY_BENCH_CONFIG"];
  if (raw === undefined)
    throw new Error("RX_IDENTITY_BENCH_CONFIG is not set: run `npm run bench`");
  return JSON.parse(raw) as ChildConfig;
}

async function main(): Promise<void> {
  // The parent's death closes the channel: never outlive it (and never leave the emulator up).
  process.on("disconnect", () => process.exit(1));
  const config = readConfig();
  const emulator = await startEntraEmulator({ tls: config.tls });
  const clientId = randomUUID();
  const clientSecret = `bench-${randomUUID()}`;
  emulator.registerApplication({ clientId, clientSecret, tenants: "*" });
  const context: MeasureContext = {
    mode: config.mode,
    emulator,
    tls: config.tls,
    clientId,
    clientSecret,
    log: (message) => process.stderr.write(`  ${message}\n`),
  };
  const selected: readonly Measure[] =
    config.only.length === 0
      ? measures.filter((m) => config.mode === "full" || m.fullOnly !== true)
      : measures.filter((m) => config.only.includes(m.id));
  for (const id of config.only) {
    if (!measures.some((m) => m.id === id)) {
      await send({ type: "failed", id, error: `no measure has the id ${id}` });
    }
  }
  try {
    for (const measure of selected) {
      process.stderr.write(`bench: ${measure.id}\n`);
      emulator.setLatency(0);
      emulator.clearFaults();
      const start = performance.now();
      try {
        const output = await measure.run(context);
        const elapsedMs = performance.now() - start;
        await send({ type: "result", result: { id: measure.id, ...output, elapsedMs } });
      } catch (error) {
        const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
        await send({ type: "failed", id: measure.id, error: text });
      }
    }
  } finally {
    await emulator.stop();
  }
  await send({ type: "done" });
  // Keep-alive sockets of the libraries measured would hold the process open for a while.
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench child failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
