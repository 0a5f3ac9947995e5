/**
 * OpenTelemetry with the real SDK (in-memory exporters registered as the global providers,
 * as an application does): a span per token request to the emulator, the documented
 * metrics, nothing on a cache hit, nothing secret in anything exported.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ClientSecretCredential, METRICS, TOKEN_REQUEST_SPAN } from "../../src/index.js";
import { startEntraEmulator, type EntraEmulator } from "../../src/testing/index.js";
import { metricLines, registerOtel, spanTree, type OtelHarness } from "../support/otel.js";

const tenant = "a0000000-0000-4000-8000-00000000000a";
const storage = "https://storage.azure.com/.default";
const canary = "CANARY-otel-secret-5d2e8b";

let emulator: EntraEmulator;
let otel: OtelHarness;
let appCounter = 0;
const credentials: ClientSecretCredential[] = [];

beforeAll(async () => {
  otel = registerOtel();
  emulator = await startEntraEmulator();
});

afterEach(async () => {
  emulator.clearFaults();
  await Promise.all(credentials.splice(0).map((credential) => credential.close()));
  otel.reset();
});

afterAll(async () => {
  await emulator.stop();
  await otel.shutdown();
});

function setup(secret = canary): { credential: ClientSecretCredential; clientId: string } {
  const clientId = `otel-app-${++appCounter}`;
  emulator.registerApplication({ clientId, clientSecret: canary, tenants: [tenant] });
  const credential = new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: emulator.authorityHost,
    ca: emulator.caCertificate,
    refresh: { retryBaseMs: 10, retryCapMs: 20 },
  });
  credentials.push(credential);
  return { credential, clientId };
}

/** The points of one metric, as `attributes -> value`. */
async function pointsOf(name: string): Promise<{ attributes: object; value: unknown }[]> {
  const dump = await otel.collect();
  return [...(dump.find((metric) => metric.name === name)?.points ?? [])];
}

describe("OpenTelemetry spans and metrics (real SDK, global providers)", () => {
  it("traces a successful token request as one CLIENT span and counts it", async () => {
    // Arrange
    const { credential } = setup();
    const requestsBefore = await pointsOf(METRICS.requests);

    // Act
    await credential.getToken(storage);

    // Assert
    const spans = otel.spans();
    expect(spans).toHaveLength(1);
    const [span] = spans;
    expect(span?.name).toBe(TOKEN_REQUEST_SPAN);
    expect(span?.kind).toBe(2); // CLIENT
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.response.status_code": 200,
      "server.address": "127.0.0.1",
      "rx_identity.tenant_id": tenant,
      "rx_identity.scopes": [storage],
      "rx_identity.cae": false,
    });
    const requests = await pointsOf(METRICS.requests);
    const success = (points: typeof requests): number =>
      points
        .filter(
          (point) =>
            (point.attributes as Record<string, unknown>)["rx_identity.outcome"] === "success",
        )
        .reduce((sum, point) => sum + (point.value as number), 0);
    expect(success(requests) - success(requestsBefore)).toBe(1);
  });

  it("traces a retried 503 as a failed span with an exception event, then a good one", async () => {
    // Arrange
    const { credential, clientId } = setup();
    emulator.injectFault({ status: 503, match: { clientId } });

    // Act
    await credential.getToken(storage);

    // Assert
    const spans = otel.spans();
    expect(spans.map((span) => span.status.code)).toEqual([
      SpanStatusCode.ERROR,
      SpanStatusCode.UNSET,
    ]);
    const failed = spans[0]!;
    expect(failed.attributes).toMatchObject({
      "http.response.status_code": 503,
      "error.type": "temporarily_unavailable",
      "rx_identity.aadsts_codes": ["AADSTS90033"],
    });
    expect(failed.events.map((event) => event.name)).toEqual(["exception"]);
    expect(failed.events[0]?.attributes?.["exception.type"]).toBe("AuthenticationError");
    expect(emulator.requestCount({ clientId })).toBe(2);
  });

  it("traces a permanent refusal with its AADSTS code and counts it by outcome and code", async () => {
    // Arrange
    const { credential } = setup("not-the-secret");

    // Act
    const failure = await credential.getToken(storage).catch((error: unknown) => error);

    // Assert
    expect(failure).toMatchObject({ name: "AuthenticationError" });
    const spans = otel.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.status).toEqual({ code: SpanStatusCode.ERROR, message: "invalid_client" });
    expect(spans[0]?.attributes["rx_identity.aadsts_codes"]).toEqual(["AADSTS7000215"]);
    const refusals = (await pointsOf(METRICS.requests)).filter(
      (point) =>
        (point.attributes as Record<string, unknown>)["rx_identity.outcome"] ===
        "permanent_failure",
    );
    expect(refusals).toEqual([
      {
        attributes: {
          "rx_identity.cae": false,
          "rx_identity.outcome": "permanent_failure",
          "error.type": "invalid_client",
          "rx_identity.aadsts_code": "AADSTS7000215",
        },
        value: 1,
      },
    ]);
  });

  it("parents the request span on the tracing context an Azure SDK client passes", async () => {
    // Arrange
    const { credential } = setup();
    const parent = trace.getTracer("test").startSpan("BlobClient-getProperties");
    const tracingContext = trace.setSpan(ROOT_CONTEXT, parent);

    // Act
    await credential.getToken(storage, { tracingOptions: { tracingContext } });
    parent.end();

    // Assert
    const request = otel.spans().find((span) => span.name === TOKEN_REQUEST_SPAN);
    expect(request?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(request?.spanContext().traceId).toBe(parent.spanContext().traceId);
  });

  it("traces and counts the first request of a process, sent while the API is still being imported", async () => {
    // Arrange: a fresh copy of the package, whose import of @opentelemetry/api has not
    // settled when the first getToken goes out (no await between the two).
    const successes = async (): Promise<number> =>
      (await pointsOf(METRICS.requests))
        .filter(
          (point) =>
            (point.attributes as Record<string, unknown>)["rx_identity.outcome"] === "success",
        )
        .reduce((sum, point) => sum + (point.value as number), 0);
    const before = await successes();
    vi.resetModules();
    const fresh = await import("../../src/index.js");
    const clientId = `otel-app-${++appCounter}`;
    emulator.registerApplication({ clientId, clientSecret: canary, tenants: [tenant] });
    const credential = new fresh.ClientSecretCredential(tenant, clientId, canary, {
      authorityHost: emulator.authorityHost,
      ca: emulator.caCertificate,
    });
    const parent = trace.getTracer("test").startSpan("app.startup");
    const tracingContext = trace.setSpan(ROOT_CONTEXT, parent);

    // Act
    const sentAt = Date.now();
    await credential.getToken(storage, { tracingOptions: { tracingContext } });
    const answeredAt = Date.now();
    parent.end();
    await vi.waitFor(() =>
      expect(otel.spans().filter((span) => span.name === TOKEN_REQUEST_SPAN)).toHaveLength(1),
    );
    await credential.close();

    // Assert: the span has the request's own times and parent, and the request is counted.
    const request = otel.spans().find((span) => span.name === TOKEN_REQUEST_SPAN);
    expect(request?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(request?.attributes["http.response.status_code"]).toBe(200);
    const startMs = request!.startTime[0] * 1_000 + request!.startTime[1] / 1e6;
    const endMs = request!.endTime[0] * 1_000 + request!.endTime[1] / 1e6;
    expect(startMs).toBeGreaterThanOrEqual(sentAt - 1);
    expect(endMs).toBeLessThanOrEqual(answeredAt + 1);
    expect((await successes()) - before).toBe(1);
  });

  it("makes no span and records no metric point on cache hits", async () => {
    // Arrange
    const { credential } = setup();
    await credential.getToken(storage);
    const spansBefore = otel.spans().length;
    const before = JSON.stringify(await pointsOf(METRICS.requests));
    const parent = trace.setSpan(ROOT_CONTEXT, trace.getTracer("test").startSpan("caller"));

    // Act
    for (let i = 0; i < 1_000; i++) {
      await credential.getToken(storage, { tracingOptions: { tracingContext: parent } });
    }

    // Assert
    expect(otel.spans()).toHaveLength(spansBefore);
    expect(JSON.stringify(await pointsOf(METRICS.requests))).toBe(before);
  });

  it("after a fail-then-succeed sequence, exports these spans and metrics, none holding a secret or a token", async () => {
    // Arrange: fresh providers, registered after the credential's first use of the API, so
    // the figures are this sequence's alone (and a provider registered late is picked up).
    await otel.shutdown();
    otel = registerOtel();
    const { credential, clientId } = setup();
    emulator.injectFault({ status: 503, match: { clientId } });
    const root = trace.getTracer("test").startSpan("app.request");

    // Act
    const token = await credential.getToken(storage, {
      tracingOptions: { tracingContext: trace.setSpan(ROOT_CONTEXT, root) },
    });
    root.end();
    const dump = await otel.collect();
    const spans = otel.spans();

    // Assert
    console.log(`span tree after a 503 then a token:\n${spanTree(spans)}`);
    console.log(`metrics after a 503 then a token:\n${metricLines(dump)}`);
    expect(dump.map((metric) => metric.name).sort()).toEqual(
      [
        METRICS.requests,
        METRICS.requestDuration,
        METRICS.tokensHeld,
        METRICS.timeUntilUnusable,
      ].sort(),
    );
    const exported = JSON.stringify({
      spans: spans.map((span) => ({
        name: span.name,
        attributes: span.attributes,
        events: span.events,
        status: span.status,
        links: span.links,
      })),
      dump,
    });
    expect(exported).not.toContain(canary);
    expect(exported).not.toContain(token.token);
    expect(exported).not.toContain(token.token.split(".")[2]);
  });
});
