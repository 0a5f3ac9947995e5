/**
 * Cache-hit `getToken` with the OpenTelemetry SDK registered as the global tracer and meter
 * provider (in-memory exporters, as a traced application has them): a hit must create no
 * span and record nothing, so it costs what it costs without a provider. Interleaved rounds
 * against `@azure/identity` under the same providers, as in `cache-hit`.
 */
import { metrics, trace } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { Measure, MeasureContext, MeasureOutput } from "../measure.js";
import { freshTarget } from "../measure.js";
import { median } from "../stats.js";
import { createOurs, createPeer, PEER_NAME, scopeOf } from "../subjects.js";
import { CACHE_HIT_MAX_US, CACHE_HIT_SIZES, interleavedRounds } from "./cache-hit.js";

/** The number of metric points and spans exported so far. */
async function exported(
  reader: PeriodicExportingMetricReader,
  metricExporter: InMemoryMetricExporter,
  spans: InMemorySpanExporter,
): Promise<{ spans: number; requests: number }> {
  metricExporter.reset();
  await reader.forceFlush();
  const requests = metricExporter
    .getMetrics()
    .flatMap((batch) => batch.scopeMetrics)
    .flatMap((scope) => scope.metrics)
    .filter((metric) => metric.descriptor.name === "rx_identity.token.requests")
    .flatMap((metric) => metric.dataPoints as { readonly value: unknown }[])
    .reduce((sum: number, point) => sum + Number(point.value), 0);
  return { spans: spans.getFinishedSpans().length, requests };
}

export const cacheHitOtel: Measure = {
  id: "cache-hit-otel",
  async run(context: MeasureContext): Promise<MeasureOutput> {
    const sizes = CACHE_HIT_SIZES[context.mode];
    const spanExporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spanExporter)],
    });
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: 3_600_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    trace.setGlobalTracerProvider(tracerProvider);
    metrics.setGlobalMeterProvider(meterProvider);
    const target = freshTarget(context);
    const scope = scopeOf("cache-hit-otel", 0);
    const ours = createOurs(target);
    const peer = createPeer(target);
    try {
      await ours.getToken(scope);
      await peer.getToken(scope);
      const before = await exported(reader, metricExporter, spanExporter);
      context.log(`interleaving ${sizes.rounds} rounds with an OpenTelemetry SDK registered`);
      const [oursSamples, peerSamples] = await interleavedRounds(
        [() => ours.getToken(scope), () => peer.getToken(scope)],
        sizes.rounds,
        sizes.roundMs,
        sizes.warmupCalls,
      );
      const after = await exported(reader, metricExporter, spanExporter);
      const oursUs = median(oursSamples!);
      const peerUs = median(peerSamples!);
      const newSpans = after.spans - before.spans;
      const newRequests = after.requests - before.requests;
      return {
        rows: [
          {
            measure: "cache-hit-otel",
            metric: "cache-hit getToken, OpenTelemetry SDK registered (µs/call)",
            ours: oursUs,
            peer: peerUs,
            peerName: PEER_NAME,
            ratio: peerUs / oursUs,
            ratioMeaning: "x faster",
            target: `<= ${CACHE_HIT_MAX_US} µs, no span or request metric on a hit`,
            met: oursUs <= CACHE_HIT_MAX_US && newSpans === 0 && newRequests === 0,
            note: `median of ${sizes.rounds} interleaved rounds per side; ${before.spans} span(s) and ${before.requests} request point(s) before the rounds (the first token), ${newSpans} span(s) and ${newRequests} request(s) recorded during them`,
          },
        ],
        details: { oursSamplesUs: oursSamples, peerSamplesUs: peerSamples, newSpans, newRequests },
      };
    } finally {
      await ours.close();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      trace.disable();
      metrics.disable();
    }
  },
};
