/**
 * Traces stop at `getToken` no more (azure-sdk-for-js #14232): a real `@azure/storage-blob`
 * call against Azurite, traced through `@azure/opentelemetry-instrumentation-azure-sdk` and
 * the real OpenTelemetry SDK, shows our token request under the client's span.
 *
 * The instrumentation sets core-tracing's instrumenter when `@azure/core-tracing` is loaded
 * with `require` (it hooks CommonJS loading, as its README says: register it before loading
 * the Azure clients). Vitest loads the clients as ES modules, whose core-tracing shares the
 * CommonJS build's state (`dist/esm/state.js` re-exports `dist/commonjs/state.js`), so a
 * `require` of it after registering is what makes the hook fire here.
 */
import { createAzureSdkInstrumentation } from "@azure/opentelemetry-instrumentation-azure-sdk";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ClientSecretCredential } from "../../src/credential/index.js";
import { TOKEN_REQUEST_SPAN } from "../../src/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { startAzurite, type RunningAzurite } from "../support/azurite.js";
import { registerOtel, spanTree, type OtelHarness } from "../support/otel.js";

const TENANT = "7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CLIENT_ID = "1c8f0d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f";
const CLIENT_SECRET = `tracing-secret-${randomUUID()}`;

let emulator: EntraEmulator;
let azurite: RunningAzurite;
let otel: OtelHarness;
let disableInstrumentation: () => void = () => undefined;

beforeAll(async () => {
  otel = registerOtel();
  disableInstrumentation = registerInstrumentations({
    instrumentations: [createAzureSdkInstrumentation()],
    tracerProvider: otel.tracerProvider,
  });
  createRequire(import.meta.url)("@azure/core-tracing");
  const [emulatorStart, azuriteStart] = await Promise.allSettled([
    startEntraEmulator(),
    startAzurite(),
  ]);
  if (emulatorStart.status === "fulfilled") emulator = emulatorStart.value;
  if (azuriteStart.status === "fulfilled") azurite = azuriteStart.value;
  if (emulatorStart.status === "rejected") throw emulatorStart.reason;
  if (azuriteStart.status === "rejected") throw azuriteStart.reason;
  emulator.registerApplication({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    tenants: [TENANT],
  });
});

afterAll(async () => {
  disableInstrumentation();
  await Promise.all([emulator?.stop(), azurite?.stop()]);
  await otel?.shutdown();
});

describe("a traced @azure/storage-blob call against Azurite", () => {
  test("has our token request span under the client's span, and no secret in any span", async () => {
    // Arrange
    const credential = new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    const container = azurite
      .blobServiceClient(credential)
      .getContainerClient(`traced-${randomUUID().slice(0, 8)}`);

    // Act
    await container.create();
    await container.getProperties();
    await credential.close();

    // Assert
    const spans = otel.spans();
    console.log(`span tree of create() then getProperties():\n${spanTree(spans)}`);
    const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
    const requests = spans.filter((span) => span.name === TOKEN_REQUEST_SPAN);
    // One token request: the second call is a cache hit and makes no span.
    expect(requests).toHaveLength(1);
    const parent = byId.get(requests[0]!.parentSpanContext?.spanId ?? "");
    expect(parent?.name).toBe("ContainerClient-create");
    expect(parent?.attributes["az.namespace"]).toBe("Microsoft.Storage");
    expect(requests[0]!.spanContext().traceId).toBe(parent?.spanContext().traceId);
    expect(spans.some((span) => span.name === "ContainerClient-getProperties")).toBe(true);
    const exported = JSON.stringify(
      spans.map((span) => ({ attributes: span.attributes, events: span.events, name: span.name })),
    );
    expect(exported).not.toContain(CLIENT_SECRET);
  });
});
