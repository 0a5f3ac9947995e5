/**
 * The tokens of the test credential: how {@link createTestCredential}'s token source mints an
 * unsigned JWT-shaped token on the scheduler's clock, and {@link decodeTestToken}, which reads
 * one back for assertions.
 */
import type { CredentialKey } from "../credential/key.js";
import { InvalidArgumentError } from "../errors/index.js";
import type { AcquiredToken } from "../streams/index.js";

/** The payload of a token minted by {@link createTestCredential}. Times in epoch seconds. */
export interface TestTokenClaims {
  /** The resource: the first scope without `/.default`. */
  readonly aud: string;
  /** `https://sts.windows.net/{tid}/`, as Entra ID v1 tokens have it. */
  readonly iss: string;
  readonly tid: string;
  readonly appid: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** Every scope of the request. */
  readonly scp: readonly string[];
  /** 1 for the first token of this credential, 2 for the next, … */
  readonly n: number;
  /** `["cp1"]` for CAE tokens. */
  readonly xms_cc?: readonly string[];
}

/** What a minted token says besides its key: who, when, for how long, which one. */
export interface MintedTokenShape {
  readonly clientId: string;
  /** The token's sequence number (`n`). */
  readonly n: number;
  /** `scheduler.now()` at minting. */
  readonly now: number;
  readonly lifetimeMs: number;
  readonly refreshInMs: number | undefined;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** `aud` of a scope: `https://storage.azure.com/.default` → `https://storage.azure.com`. */
function audienceOf(scope: string): string {
  if (scope.endsWith("/.default")) return scope.slice(0, -"/.default".length);
  try {
    const url = new URL(scope);
    return url.protocol === "https:" || url.protocol === "http:" ? url.origin : scope;
  } catch {
    return scope;
  }
}

/** An unsigned (`alg: "none"`) token for `key`, as the engine's acquirer returns it. */
export function mintTestToken(key: CredentialKey, shape: MintedTokenShape): AcquiredToken {
  const { now, lifetimeMs, refreshInMs } = shape;
  const expiresOnTimestamp = now + lifetimeMs;
  const issuedAt = Math.floor(now / 1000);
  const claims: TestTokenClaims = {
    aud: audienceOf(key.scopes[0] ?? ""),
    iss: `https://sts.windows.net/${key.tenant}/`,
    tid: key.tenant,
    appid: shape.clientId,
    iat: issuedAt,
    nbf: issuedAt,
    exp: Math.floor(expiresOnTimestamp / 1000),
    scp: key.scopes,
    n: shape.n,
    ...(key.enableCae ? { xms_cc: ["cp1"] } : {}),
  };
  return {
    token: `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.`,
    expiresOnTimestamp,
    refreshAfterTimestamp: refreshInMs === undefined ? undefined : now + refreshInMs,
  };
}

/**
 * Decodes the payload of a token minted by {@link createTestCredential}, to assert on its
 * audience, tenant, expiry or sequence number.
 *
 * @throws InvalidArgumentError when `token` is not such a token
 * @example
 * ```ts
 * const { token } = await credential.getToken("https://storage.azure.com/.default");
 * decodeTestToken(token).aud; // "https://storage.azure.com"
 * ```
 */
export function decodeTestToken(token: string): TestTokenClaims {
  const payload = token.split(".")[1];
  try {
    if (payload === undefined) throw new TypeError("no payload");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as unknown;
    if (typeof claims !== "object" || claims === null || !("n" in claims)) {
      throw new TypeError("not a test token");
    }
    return claims as TestTokenClaims;
  } catch (cause) {
    throw new InvalidArgumentError(
      "Expected a token minted by createTestCredential (header.payload.signature, base64url JSON payload).",
      { cause },
    );
  }
}
