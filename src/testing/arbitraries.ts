// Type-only: `rx-identity/testing` never loads fast-check at run time. The caller passes
// their own `fc`, so the arbitraries belong to the same fast-check copy as their
// `fc.assert` / `test.prop` (arbitraries of another copy are not recognised by it).
import type * as FastCheck from "fast-check";
import type { Arbitrary } from "fast-check";
import type { FaultPhase } from "./fake-token-source.js";

/**
 * The parts of fast-check that {@link arbitraries} uses: `import * as fc from "fast-check"`,
 * `import fc from "fast-check"` and `@fast-check/vitest`'s `fc` all fit.
 */
export type FastCheckModule = Pick<
  typeof FastCheck,
  | "array"
  | "boolean"
  | "constant"
  | "constantFrom"
  | "dictionary"
  | "domain"
  | "integer"
  | "jsonValue"
  | "nat"
  | "oneof"
  | "option"
  | "record"
  | "string"
  | "stringMatching"
  | "tuple"
  | "uuid"
>;

/** A token's lifetime and the server's `refresh_in`, as {@link RxIdentityArbitraries.tokenLifetime} generates them. */
export interface TokenLifetime {
  readonly lifetimeMs: number;
  /** Less than `lifetimeMs`, or `undefined` when the server sends no `refresh_in`. */
  readonly refreshInMs: number | undefined;
}

/** Constraints of {@link RxIdentityArbitraries.lifetimeMs} and {@link RxIdentityArbitraries.tokenLifetime}. */
export interface LifetimeConstraints {
  /**
   * The shortest lifetime.
   * @default 1_000
   */
  readonly minMs?: number | undefined;
  /**
   * The longest lifetime.
   * @default 86_400_000 (24 hours, the longest a CAE token lives)
   */
  readonly maxMs?: number | undefined;
  /**
   * The smallest `refresh_in`, as a fraction of the lifetime. Entra ID sends half the
   * lifetime; a tiny `refresh_in` on a long token means a refresh every few milliseconds
   * for hours of virtual time, which makes properties slow without finding more.
   * @default 0.1
   */
  readonly minRefreshInFraction?: number | undefined;
}

/** Constraints of {@link RxIdentityArbitraries.faultSchedule}. */
export interface FaultScheduleConstraints {
  /**
   * At most this many outages.
   * @default 4
   */
  readonly maxPhases?: number | undefined;
  /**
   * The longest healthy stretch before an outage.
   * @default 7_200_000 (2 hours)
   */
  readonly maxGapMs?: number | undefined;
  /**
   * The longest outage.
   * @default 600_000 (10 minutes)
   */
  readonly maxDurationMs?: number | undefined;
  /**
   * `"transient"` or `"permanent"` for outages of one kind only, `"both"` for a mix.
   * @default "both"
   */
  readonly kinds?: "transient" | "permanent" | "both" | undefined;
  /**
   * The longest `Retry-After` of transient failures.
   * @default 120_000
   */
  readonly maxRetryAfterMs?: number | undefined;
}

/** One step of a {@link RxIdentityArbitraries.timeline}. */
export type TimelineStep =
  /** Subscriber number `subscriber` subscribes to `token$` (no-op if already subscribed). */
  | { readonly kind: "subscribe"; readonly subscriber: number }
  /** Subscriber number `subscriber` unsubscribes (no-op if not subscribed). */
  | { readonly kind: "unsubscribe"; readonly subscriber: number }
  /** One `getToken` call. */
  | { readonly kind: "get" }
  /** Virtual time moves on by `ms`. */
  | { readonly kind: "advance"; readonly ms: number };

/** Constraints of {@link RxIdentityArbitraries.timeline}. */
export interface TimelineConstraints {
  /**
   * Subscribers are numbered `0` to `subscribers - 1`.
   * @default 3
   */
  readonly subscribers?: number | undefined;
  /**
   * At most this many steps.
   * @default 30
   */
  readonly maxSteps?: number | undefined;
  /**
   * The longest single `advance`.
   * @default 1_800_000 (30 minutes)
   */
  readonly maxAdvanceMs?: number | undefined;
}

/** The arbitraries {@link arbitraries} builds. Each call returns a new arbitrary. */
export interface RxIdentityArbitraries {
  /** A valid scope: a well-known Azure resource, `api://{guid}/.default`, or `https://{domain}/.default`. */
  scope(): Arbitrary<string>;
  /** One to four valid scopes. */
  scopes(): Arbitrary<string[]>;
  /**
   * A scope `ClientSecretCredential` must reject before any request: empty, whitespace only,
   * two scopes in one string, whitespace or control characters inside, or over 2048 characters.
   */
  hostileScope(): Arbitrary<string>;
  /** A valid tenant: a GUID (either case) or a domain such as `contoso.onmicrosoft.com`. */
  tenantId(): Arbitrary<string>;
  /**
   * A tenant id `ClientSecretCredential` must reject before any request: path traversal,
   * URL syntax, whitespace, control characters, look-alike Unicode letters, a leading `.`,
   * `..`, empty, or over 256 characters.
   */
  hostileTenantId(): Arbitrary<string>;
  /** Valid claims: a JSON object (CAE- and conditional-access-shaped ones, and arbitrary ones). */
  claims(): Arbitrary<string>;
  /** Claims that must be rejected: not JSON, JSON that is not an object, or over 16 KiB. */
  hostileClaims(): Arbitrary<string>;
  /** A token lifetime in milliseconds, biased to the edges of the refresh rules. */
  lifetimeMs(constraints?: LifetimeConstraints): Arbitrary<number>;
  /** A lifetime and, half the time, a `refresh_in` below it (at least `minRefreshInFraction` of it). */
  tokenLifetime(constraints?: LifetimeConstraints): Arbitrary<TokenLifetime>;
  /**
   * Outages in time order that never overlap: what `TestCredential.scheduleFaults` applies.
   * Transient ones carry a status of 0 (no response), 408, 429 or 5xx and maybe a
   * `Retry-After`; permanent ones 400, 401 or 403.
   */
  faultSchedule(constraints?: FaultScheduleConstraints): Arbitrary<FaultPhase[]>;
  /** Steps of a consumer's life: subscribe, unsubscribe, `getToken`, and time passing. */
  timeline(constraints?: TimelineConstraints): Arbitrary<TimelineStep[]>;
}

const WELL_KNOWN_RESOURCES = [
  "https://storage.azure.com/.default",
  "https://vault.azure.net/.default",
  "https://graph.microsoft.com/.default",
  "https://management.azure.com/.default",
  "https://database.windows.net/.default",
  "https://servicebus.azure.net/.default",
  "https://eventhubs.azure.net/.default",
  "https://cognitiveservices.azure.com/.default",
];

/** Characters that make a scope invalid anywhere inside it (whitespace and C0/C1 controls). */
const SCOPE_BREAKERS = [
  " ",
  "\t",
  "\n",
  "\r",
  "\u000b",
  "\u000c",
  "\u00a0",
  "\u1680",
  "\u2003",
  "\u2028",
  "\u2029",
  "\u3000",
  "\ufeff",
  "\u0000",
  "\u0001",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u009f",
];

/** Characters that make a tenant id invalid anywhere inside it. */
const TENANT_BREAKERS = [
  ...SCOPE_BREAKERS,
  "/",
  "\\",
  "?",
  "#",
  "@",
  ":",
  "%",
  "_",
  "&",
  "=",
  "é",
  // Cyrillic small letter ie: looks like a Latin "e".
  "\u0435",
  // Right-to-left override: reorders what a log line shows.
  "\u202e",
  "\u200b",
];

const HOSTILE_TENANTS = [
  "",
  ".",
  "..",
  "../evil",
  "../../common",
  "..%2fevil",
  "%2e%2e",
  "tenant/../other",
  "https://evil.example",
  "tenant?x=1",
  "tenant#x",
  "user@evil.example",
  "contoso..onmicrosoft.com",
  ".contoso.onmicrosoft.com",
  "contoso.onmicrosoft.com ",
  " contoso.onmicrosoft.com",
  "x".repeat(257),
];

const HOSTILE_SCOPES = [
  "",
  " ",
  "\t\n",
  "https://storage.azure.com/.default https://vault.azure.net/.default",
  "https://storage.azure.com/.default\r\nX-Injected: 1",
  "https://storage.azure.com/\u0000.default",
  `https://storage.azure.com/${"a".repeat(2048)}`,
];

const HOSTILE_CLAIMS = [
  "not json",
  "{",
  '{"access_token":',
  "[]",
  '[{"access_token":{}}]',
  "null",
  "42",
  "true",
  '"{}"',
  " ",
  // Over the 16 KiB limit, though a valid object.
  JSON.stringify({ access_token: { padding: { value: "x".repeat(16 * 1024) } } }),
];

/** Edges of the refresh rules of `DEFAULT_REFRESH_POLICY`, where bugs live. */
const LIFETIME_EDGES = [
  1_000, 4_000, 40_000, 79_999, 80_000, 120_000, 300_000, 600_000, 3_600_000, 4_500_000, 5_400_000,
  7_199_999, 7_200_000, 86_400_000,
];

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${String(value)}.`);
  }
  return value;
}

/**
 * Builds fast-check arbitraries of rx-identity's inputs and environments, with your `fc`:
 * valid and hostile scopes, tenant ids and claims, token lifetimes with `refresh_in`, fault
 * schedules for `TestCredential.scheduleFaults`, and timelines of a consumer's life.
 *
 * fast-check is only a type import of `rx-identity/testing`: code that never calls this does
 * not need fast-check installed.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { arbitraries } from "rx-identity/testing";
 *
 * const arb = arbitraries(fc);
 * fc.assert(
 *   fc.property(arb.hostileTenantId(), (tenant) => {
 *     assert.throws(() => new ClientSecretCredential(tenant, "app", "secret"));
 *   }),
 * );
 * ```
 */
export function arbitraries(fc: FastCheckModule): RxIdentityArbitraries {
  const insertInside = (base: Arbitrary<string>, chars: readonly string[]): Arbitrary<string> =>
    fc.tuple(base, fc.constantFrom(...chars), fc.nat()).map(([text, char, at]) => {
      // Strictly inside, so trimming (which ClientSecretCredential does) cannot remove it.
      const index = 1 + (at % Math.max(1, text.length - 1));
      return `${text.slice(0, index)}${char}${text.slice(index)}`;
    });

  const guid = (): Arbitrary<string> =>
    fc.tuple(fc.uuid(), fc.boolean()).map(([id, upper]) => (upper ? id.toUpperCase() : id));

  const label = (): Arbitrary<string> =>
    fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);

  const scope = (): Arbitrary<string> =>
    fc.oneof(
      fc.constantFrom(...WELL_KNOWN_RESOURCES),
      fc.uuid().map((id) => `api://${id}/.default`),
      fc.domain().map((domain) => `https://${domain}/.default`),
    );

  const tenantId = (): Arbitrary<string> =>
    fc.oneof(
      guid(),
      label().map((name) => `${name}.onmicrosoft.com`),
      fc.domain(),
    );

  const lifetimeMs = (constraints: LifetimeConstraints = {}): Arbitrary<number> => {
    const min = positiveInteger("minMs", constraints.minMs ?? 1_000);
    const max = positiveInteger("maxMs", constraints.maxMs ?? 86_400_000);
    if (max < min) throw new RangeError(`Expected maxMs (${max}) >= minMs (${min}).`);
    const edges = LIFETIME_EDGES.filter((edge) => edge >= min && edge <= max);
    const any = fc.integer({ min, max });
    return edges.length === 0 ? any : fc.oneof(any, fc.constantFrom(...edges));
  };

  return {
    scope,
    scopes: () => fc.array(scope(), { minLength: 1, maxLength: 4 }),
    hostileScope: () =>
      fc.oneof(
        fc.constantFrom(...HOSTILE_SCOPES),
        fc.stringMatching(/^[ \t\n\r\u00a0\u3000]+$/),
        insertInside(scope(), SCOPE_BREAKERS),
        fc.integer({ min: 2049, max: 4096 }).map((n) => `api://${"s".repeat(n)}`),
      ),
    tenantId,
    hostileTenantId: () =>
      fc.oneof(
        fc.constantFrom(...HOSTILE_TENANTS),
        insertInside(tenantId(), TENANT_BREAKERS),
        tenantId().map((tenant) => `.${tenant}`),
        fc.tuple(tenantId(), tenantId()).map(([a, b]) => `${a}..${b}`),
        fc.integer({ min: 257, max: 1024 }).map((n) => "a".repeat(n)),
      ),
    claims: () =>
      fc.oneof(
        fc
          .integer({ min: 1_600_000_000, max: 2_000_000_000 })
          .map((nbf) =>
            JSON.stringify({ access_token: { nbf: { essential: true, value: String(nbf) } } }),
          ),
        fc.constant(JSON.stringify({ access_token: { xms_cc: { values: ["cp1"] } } })),
        fc.constant(JSON.stringify({ access_token: { acrs: { essential: true, value: "c1" } } })),
        fc
          .dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 }), {
            maxKeys: 8,
          })
          .map((object) => JSON.stringify(object))
          .filter((json) => Buffer.byteLength(json, "utf8") <= 16 * 1024),
      ),
    hostileClaims: () =>
      fc.oneof(
        fc.constantFrom(...HOSTILE_CLAIMS),
        fc
          .jsonValue({ maxDepth: 2 })
          .filter((value) => typeof value !== "object" || value === null || Array.isArray(value))
          .map((value) => JSON.stringify(value)),
        fc.string({ minLength: 1, maxLength: 40 }).filter((text) => {
          try {
            const parsed: unknown = JSON.parse(text);
            return typeof parsed !== "object" || parsed === null || Array.isArray(parsed);
          } catch {
            return true;
          }
        }),
      ),
    lifetimeMs,
    tokenLifetime: (constraints = {}) => {
      const fraction = constraints.minRefreshInFraction ?? 0.1;
      if (!(fraction >= 0 && fraction < 1)) {
        throw new RangeError(
          `Expected \`minRefreshInFraction\` to be in [0, 1), got ${String(fraction)}.`,
        );
      }
      return lifetimeMs(constraints).chain((lifetime) =>
        fc.record({
          lifetimeMs: fc.constant(lifetime),
          refreshInMs: fc.option(
            fc.integer({ min: Math.floor(lifetime * fraction), max: lifetime - 1 }),
            { nil: undefined },
          ),
        }),
      );
    },
    faultSchedule: (constraints = {}) => {
      const maxPhases = constraints.maxPhases ?? 4;
      const maxGapMs = constraints.maxGapMs ?? 7_200_000;
      const maxDurationMs = positiveInteger("maxDurationMs", constraints.maxDurationMs ?? 600_000);
      const maxRetryAfterMs = constraints.maxRetryAfterMs ?? 120_000;
      const kinds = constraints.kinds ?? "both";
      const transient = kinds === "both" ? fc.boolean() : fc.constant(kinds === "transient");
      interface Phase {
        readonly gapMs: number;
        readonly durationMs: number;
        readonly transient: boolean;
        readonly status: number;
        readonly retryAfterMs: number | undefined;
      }
      const phase: Arbitrary<Phase> = fc
        .record({
          gapMs: fc.integer({ min: 0, max: maxGapMs }),
          durationMs: fc.integer({ min: 1, max: maxDurationMs }),
          transient,
        })
        .chain(({ gapMs, durationMs, transient: isTransient }): Arbitrary<Phase> =>
          isTransient
            ? fc.record({
                gapMs: fc.constant(gapMs),
                durationMs: fc.constant(durationMs),
                transient: fc.constant(true),
                status: fc.constantFrom(0, 408, 429, 500, 502, 503, 504),
                retryAfterMs: fc.option(fc.integer({ min: 0, max: maxRetryAfterMs }), {
                  nil: undefined,
                }),
              })
            : fc.record({
                gapMs: fc.constant(gapMs),
                durationMs: fc.constant(durationMs),
                transient: fc.constant(false),
                status: fc.constantFrom(400, 401, 403),
                retryAfterMs: fc.constant(undefined),
              }),
        );
      return fc.array(phase, { maxLength: maxPhases }).map((phases) => {
        let at = 0;
        return phases.map(({ gapMs, durationMs, ...rest }): FaultPhase => {
          const startMs = at + gapMs;
          at = startMs + durationMs;
          return { startMs, durationMs, ...rest };
        });
      });
    },
    timeline: (constraints = {}) => {
      const subscribers = positiveInteger("subscribers", constraints.subscribers ?? 3);
      const maxSteps = constraints.maxSteps ?? 30;
      const maxAdvanceMs = positiveInteger("maxAdvanceMs", constraints.maxAdvanceMs ?? 1_800_000);
      const subscriber = fc.integer({ min: 0, max: subscribers - 1 });
      const step: Arbitrary<TimelineStep> = fc.oneof(
        subscriber.map((n) => ({ kind: "subscribe" as const, subscriber: n })),
        subscriber.map((n) => ({ kind: "unsubscribe" as const, subscriber: n })),
        fc.constant({ kind: "get" as const }),
        fc
          .oneof(
            fc.integer({ min: 1, max: Math.min(1_000, maxAdvanceMs) }),
            fc.integer({ min: 1, max: maxAdvanceMs }),
          )
          .map((ms) => ({ kind: "advance" as const, ms })),
      );
      return fc.array(step, { maxLength: maxSteps });
    },
  };
}
