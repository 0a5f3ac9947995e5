/**
 * The real OpenTelemetry SDK with in-memory exporters, registered as the global tracer and
 * meter providers (as an application's setup does), and readable dumps of what it received:
 * the span tree and the metric points.
 */
import { metrics, trace } from "@opentelemetry/api";
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";

/** A registered SDK and its exporters. */
export interface OtelHarness {
  readonly tracerProvider: BasicTracerProvider;
  readonly spans: () => ReadableSpan[];
  /** Collects the metrics now and returns every point, by metric name. */
  readonly collect: () => Promise<MetricDump[]>;
  readonly reset: () => void;
  readonly shutdown: () => Promise<void>;
}

/** One metric as a collector receives it. */
export interface MetricDump {
  readonly name: string;
  readonly unit: string;
  readonly type: string;
  readonly points: readonly {
    readonly attributes: Record<string, unknown>;
    /** The counter's sum, the gauge's value, or the histogram's count and sum. */
    readonly value: number | { readonly count: number; readonly sum: number };
  }[];
}

/**
 * Registers a `BasicTracerProvider` and a `MeterProvider` globally, exporting to memory.
 *
 * @example
 * ```ts
 * const otel = registerOtel();
 * await credential.getToken(scope);
 * console.log(spanTree(otel.spans()));
 * ```
 */
export function registerOtel(): OtelHarness {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spanExporter)],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    // Exports only when asked (forceFlush).
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    tracerProvider,
    spans: () => spanExporter.getFinishedSpans(),
    collect: async () => {
      metricExporter.reset();
      await reader.forceFlush();
      return dumpMetrics(metricExporter.getMetrics());
    },
    reset: () => spanExporter.reset(),
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      trace.disable();
      metrics.disable();
    },
  };
}

function dumpMetrics(batches: ResourceMetrics[]): MetricDump[] {
  const latest = batches.at(-1);
  if (latest === undefined) return [];
  return latest.scopeMetrics.flatMap((scope) =>
    scope.metrics.map((metric) => ({
      name: metric.descriptor.name,
      unit: metric.descriptor.unit,
      type:
        metric.dataPointType === DataPointType.SUM
          ? metric.isMonotonic
            ? "counter"
            : "up-down counter"
          : DataPointType[metric.dataPointType].toLowerCase(),
      points: (metric.dataPoints as DataPoint<number | Histogram>[]).map((point) => ({
        attributes: { ...point.attributes },
        value:
          typeof point.value === "number"
            ? point.value
            : { count: point.value.count, sum: point.value.sum ?? 0 },
      })),
    })),
  );
}

/**
 * The spans as an indented tree (children under their parent), one line each: name, kind,
 * status, and the attributes and events that say what happened.
 *
 * @example
 * ```ts
 * console.log(spanTree(otel.spans()));
 * ```
 */
export function spanTree(spans: readonly ReadableSpan[]): string {
  const ids = new Set(spans.map((span) => span.spanContext().spanId));
  const children = new Map<string | undefined, ReadableSpan[]>();
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    (children.get(key) ?? children.set(key, []).get(key)!).push(span);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number): void => {
    const list = (children.get(parent) ?? []).sort(
      (a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1],
    );
    for (const span of list) {
      const status = ["UNSET", "OK", "ERROR"][span.status.code] ?? String(span.status.code);
      const kind = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"][span.kind];
      const pick = Object.entries(span.attributes)
        .filter(([name]) => /^(rx_identity|error\.type|http\.response|az\.namespace)/.test(name))
        .map(([name, value]) => `${name}=${JSON.stringify(value)}`);
      const events = span.events.map((event) => `event ${event.name}`);
      lines.push(
        `${"  ".repeat(depth)}${span.name} [${kind}, ${status}${span.status.message ? `: ${span.status.message}` : ""}] ${[...pick, ...events].join(" ")}`.trimEnd(),
      );
      walk(span.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join("\n");
}

/**
 * The metrics as lines: name, unit, type, then each point's attributes and value.
 *
 * @example
 * ```ts
 * console.log(metricLines(await otel.collect()));
 * ```
 */
export function metricLines(dump: readonly MetricDump[]): string {
  return dump
    .flatMap((metric) =>
      metric.points.map(
        (point) =>
          `${metric.name} (${metric.unit}, ${metric.type}) ${JSON.stringify(point.attributes)} = ${JSON.stringify(point.value)}`,
      ),
    )
    .join("\n");
}
