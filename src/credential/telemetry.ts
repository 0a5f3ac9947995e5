/**
 * OpenTelemetry, when the application has `@opentelemetry/api` (an optional peer): a span per
 * token request to Entra ID, and the metrics documented in the README, sent to whatever tracer
 * and meter providers are registered globally. Nothing to configure.
 *
 * Nothing is loaded or paid without it: the API is imported once per process with a dynamic
 * `import()` (a `require` in the CommonJS build) whose failure only means "absent", and no
 * request waits for it (one sent before it settles is traced once it has). Nothing
 * here is on the cache-hit path: spans wrap requests, request metrics read `events$`, and the
 * gauges read `status()` when a collector asks.
 */
import type * as Otel from "@opentelemetry/api";
import type { Observable } from "rxjs";
import type { AcquiredToken, KeyStatus } from "../streams/types.js";
import { summarizeFailure, type CredentialEvent, type FailureSummary } from "./events.js";
import type { CredentialKey } from "./key.js";

/** The instrumentation scope of every span and metric (the package name). */
export const INSTRUMENTATION_SCOPE = "rx-identity";

/** The name of the span of one token request to Entra ID (an HTTP client span's low-cardinality route). */
export const TOKEN_REQUEST_SPAN = "POST /{tenant}/oauth2/v2.0/token";

/** Metric names, by OpenTelemetry's naming conventions (units apart, in UCUM). */
export const METRICS = {
  /** Counter, `{request}`: token requests by `rx_identity.outcome`, `error.type`, `rx_identity.aadsts_code`. */
  requests: "rx_identity.token.requests",
  /** Histogram, `s`: how long each token request took, with the same attributes. */
  requestDuration: "rx_identity.token.request.duration",
  /** UpDownCounter (observed), `{token}`: usable tokens held in memory. */
  tokensHeld: "rx_identity.tokens.held",
  /** Gauge, `s`: seconds until the soonest held token leaves its usable life. */
  timeUntilUnusable: "rx_identity.token.time_until_unusable",
  /** Gauge, `1`: 1 while every token store answers, 0 while one does not (only with a store). */
  storeAvailable: "rx_identity.token_store.available",
} as const;

type Api = typeof Otel;

/** `undefined` until the import settles; `null` when the API is absent. */
let api: Api | null | undefined;
let loading: Promise<Api | null> | undefined;

/**
 * Imports `@opentelemetry/api` once per process; resolves to `null` when it is not installed.
 *
 * @example
 * ```ts
 * const api = await loadOpenTelemetry();
 * if (api !== null) api.trace.getTracer("rx-identity");
 * ```
 */
export function loadOpenTelemetry(): Promise<Api | null> {
  loading ??= import("@opentelemetry/api").then(
    (module) => (api = module),
    () => (api = null),
  );
  return loading;
}

/** What the gauges read from one live credential. */
export interface TelemetrySource {
  readonly now: () => number;
  readonly keys: () => readonly KeyStatus<CredentialKey>[];
  readonly store: () => "none" | "available" | "unavailable";
}

const sources = new Set<TelemetrySource>();

interface Instruments {
  readonly provider: Otel.MeterProvider;
  readonly requests: Otel.Counter;
  readonly duration: Otel.Histogram;
}
let instruments: Instruments | undefined;

/**
 * The instruments on the meter provider registered now. A provider registered after the
 * first use gets its own (the metrics API has no proxy meter, unlike the tracer).
 */
function instrumentsOf(otel: Api): Instruments {
  const provider = otel.metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments;
  const meter = provider.getMeter(INSTRUMENTATION_SCOPE);
  const held = meter.createObservableUpDownCounter(METRICS.tokensHeld, {
    description: "Usable tokens held in memory by rx-identity credentials.",
    unit: "{token}",
  });
  const remaining = meter.createObservableGauge(METRICS.timeUntilUnusable, {
    description: "Seconds until the soonest held token leaves its usable life.",
    unit: "s",
  });
  const store = meter.createObservableGauge(METRICS.storeAvailable, {
    description: "1 while the token stores answer, 0 while one does not.",
    unit: "1",
  });
  meter.addBatchObservableCallback(
    (result) => {
      let count = 0;
      let soonest = Number.POSITIVE_INFINITY;
      let withStore = 0;
      let storeDown = false;
      for (const source of sources) {
        const now = source.now();
        for (const key of source.keys()) {
          if (key.usableUntil === undefined || !(now < key.usableUntil)) continue;
          count += 1;
          soonest = Math.min(soonest, key.usableUntil - now);
        }
        const state = source.store();
        if (state !== "none") withStore += 1;
        if (state === "unavailable") storeDown = true;
      }
      result.observe(held, count);
      if (count > 0) result.observe(remaining, soonest / 1_000);
      if (withStore > 0) result.observe(store, storeDown ? 0 : 1);
    },
    [held, remaining, store],
  );
  instruments = {
    provider,
    requests: meter.createCounter(METRICS.requests, {
      description: "Token requests to Microsoft Entra ID, by outcome and error.",
      unit: "{request}",
    }),
    duration: meter.createHistogram(METRICS.requestDuration, {
      description: "How long token requests to Microsoft Entra ID took.",
      unit: "s",
      advice: {
        explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      },
    }),
  };
  return instruments;
}

/** Options of {@link instrumentCredential}. */
export interface InstrumentOptions {
  /**
   * The credential's authority host, for `server.address` and `server.port`.
   * @default undefined (no server attributes: a wrapped credential asks whom it asks)
   */
  readonly authorityHost?: string | undefined;
  /**
   * Add `rx_identity.scopes` to the request metrics (one series per scope set).
   * @default false
   */
  readonly scopeAttribute?: boolean | undefined;
}

/** The metric attributes of a request outcome: bounded (no tenant, no scope unless asked). */
function requestAttributes(
  event: CredentialEvent & { type: "acquisition-succeeded" | "acquisition-failed" },
  scopeAttribute: boolean,
): Otel.Attributes {
  const attributes: Otel.Attributes = {
    "rx_identity.cae": event.enableCae,
    "rx_identity.outcome":
      event.type === "acquisition-succeeded"
        ? "success"
        : event.failure.transient
          ? "transient_failure"
          : "permanent_failure",
  };
  if (event.type === "acquisition-failed") {
    attributes["error.type"] = errorType(event.failure);
    const code = event.failure.aadstsCodes[0];
    if (code !== undefined) attributes["rx_identity.aadsts_code"] = `AADSTS${code}`;
  }
  if (scopeAttribute) attributes["rx_identity.scopes"] = event.scopes.join(" ");
  return attributes;
}

/** `error.type`: the OAuth error when the service answered one, else the error's class. */
function errorType(failure: FailureSummary): string {
  return failure.error ?? failure.name;
}

/**
 * Wires one credential to OpenTelemetry: its request metrics from `events`, its gauges from
 * `source` (until the returned `close`), and `traceRequest`, which wraps one token request
 * in a span parented on the caller's context (an Azure SDK client's
 * `tracingOptions.tracingContext`), else on the active context.
 *
 * @example
 * ```ts
 * const telemetry = instrumentCredential(credential.events$, source, { authorityHost });
 * const acquire = (key, signal, ctx) => telemetry.traceRequest(key, ctx, () => raw(key, signal));
 * ```
 */
export function instrumentCredential(
  events: Observable<CredentialEvent>,
  source: TelemetrySource,
  options: InstrumentOptions,
): {
  readonly traceRequest: (
    key: CredentialKey,
    callerContext: unknown,
    request: () => Promise<AcquiredToken>,
  ) => Promise<AcquiredToken>;
  readonly close: () => void;
} {
  const url = options.authorityHost === undefined ? undefined : new URL(options.authorityHost);
  const scopeAttribute = options.scopeAttribute === true;
  sources.add(source);
  void loadOpenTelemetry().then((otel) => {
    // Registers the gauges on the provider of the moment, before the first request.
    if (otel !== null && sources.has(source)) instrumentsOf(otel);
  });
  const subscription = events.subscribe((event) => {
    if (event.type !== "acquisition-succeeded" && event.type !== "acquisition-failed") return;
    const record = (otel: Api): void => {
      const { requests, duration } = instrumentsOf(otel);
      const attributes = requestAttributes(event, scopeAttribute);
      requests.add(1, attributes);
      duration.record(event.durationMs / 1_000, attributes);
    };
    if (api !== undefined && api !== null) record(api);
    // A request that went out while the API was being imported is counted once it is there.
    else if (api === undefined) void loadOpenTelemetry().then((otel) => otel && record(otel));
  });

  function traceRequest(
    key: CredentialKey,
    callerContext: unknown,
    request: () => Promise<AcquiredToken>,
  ): Promise<AcquiredToken> {
    const otel = api;
    if (otel === null) return request();
    if (otel === undefined) return traceBeforeLoaded(key, callerContext, request);
    // An Azure SDK client traced through OpenTelemetry passes an OpenTelemetry `Context`;
    // without its instrumentation, core-tracing's own context holds no OpenTelemetry span.
    const parent = parentOf(otel, callerContext);
    const span = startRequestSpan(otel, key, parent, undefined);
    return otel.context.with(otel.trace.setSpan(parent, span), request).then(
      (token) => {
        endRequestSpan(otel, span, undefined, undefined);
        return token;
      },
      (error: unknown) => {
        endRequestSpan(otel, span, { error }, undefined);
        throw error;
      },
    );
  }

  /**
   * A request made while the API is still being imported (the first one, right after the
   * process started): it goes out at once, as without a provider, and its span is recorded
   * when the import settles, with the request's own start and end times. Waiting for the
   * import first would delay the request by a module load (and stall a virtual clock, which
   * sees no request on the wire meanwhile and moves on).
   */
  function traceBeforeLoaded(
    key: CredentialKey,
    callerContext: unknown,
    request: () => Promise<AcquiredToken>,
  ): Promise<AcquiredToken> {
    // Span times are wall-clock instants: the SDK's own clock is `Date`-based too.
    const startTime = Date.now();
    const pending = request();
    const settled = pending.then(
      () => ({ endTime: Date.now(), failure: undefined }),
      (error: unknown) => ({ endTime: Date.now(), failure: { error } }),
    );
    void Promise.all([loadOpenTelemetry(), settled]).then(([otel, { endTime, failure }]) => {
      if (otel === null) return;
      const span = startRequestSpan(otel, key, parentOf(otel, callerContext), startTime);
      endRequestSpan(otel, span, failure, endTime);
    });
    return pending;
  }

  function parentOf(otel: Api, callerContext: unknown): Otel.Context {
    const given = isContext(callerContext) ? callerContext : undefined;
    return given !== undefined && otel.trace.getSpan(given) !== undefined
      ? given
      : otel.context.active();
  }

  function startRequestSpan(
    otel: Api,
    key: CredentialKey,
    parent: Otel.Context,
    startTime: number | undefined,
  ): Otel.Span {
    return otel.trace.getTracer(INSTRUMENTATION_SCOPE).startSpan(
      TOKEN_REQUEST_SPAN,
      {
        kind: otel.SpanKind.CLIENT,
        ...(startTime === undefined ? {} : { startTime }),
        attributes: {
          "az.namespace": "Microsoft.AAD",
          "http.request.method": "POST",
          ...(url === undefined
            ? {}
            : {
                "server.address": url.hostname,
                "server.port": Number(url.port || 443),
                "url.full": `${url.origin}${url.pathname.replace(/\/$/, "")}/${key.tenant}/oauth2/v2.0/token`,
              }),
          "rx_identity.tenant_id": key.tenant,
          "rx_identity.scopes": [...key.scopes],
          "rx_identity.cae": key.enableCae,
          "rx_identity.has_claims": key.claims !== undefined,
        },
      },
      parent,
    );
  }

  function endRequestSpan(
    otel: Api,
    span: Otel.Span,
    failed: { readonly error: unknown } | undefined,
    endTime: number | undefined,
  ): void {
    if (failed === undefined) {
      span.setAttribute("http.response.status_code", 200);
    } else {
      const failure = summarizeFailure(failed.error, false);
      if (failure.status !== undefined && failure.status > 0) {
        span.setAttribute("http.response.status_code", failure.status);
      }
      span.setAttribute("error.type", errorType(failure));
      if (failure.aadstsCodes.length > 0) {
        span.setAttribute(
          "rx_identity.aadsts_codes",
          failure.aadstsCodes.map((code) => `AADSTS${code}`),
        );
      }
      if (failure.correlationId !== undefined) {
        span.setAttribute("rx_identity.correlation_id", failure.correlationId);
      }
      // Name and message only: no stack, no cause chain, no raw response.
      span.recordException({ name: failure.name, message: failure.message }, endTime);
      span.setStatus({ code: otel.SpanStatusCode.ERROR, message: errorType(failure) });
    }
    span.end(endTime);
  }

  return {
    traceRequest,
    close: () => {
      sources.delete(source);
      subscription.unsubscribe();
    },
  };
}

function isContext(value: unknown): value is Otel.Context {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { getValue?: unknown }).getValue === "function"
  );
}
