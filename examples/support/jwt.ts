/**
 * Just enough JWT verification for the examples' resource servers: an RS256 signature
 * checked against a JSON Web Key Set, then `aud`, `nbf` and `exp` against the clock with no
 * leeway (as Azure Storage's emulator does). Use a maintained library (`jose`) in production.
 */
import { createPublicKey, verify, type JsonWebKey } from "node:crypto";

/** Options of {@link verifyAccessToken}. */
export interface VerifyOptions {
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] };
  /** The expected `aud`, such as `https://storage.azure.com`. */
  readonly audience: string;
  /**
   * The clock, in epoch milliseconds.
   * @default Date.now
   */
  readonly now?: () => number;
}

/**
 * Why a token was refused.
 *
 * @example
 * ```ts
 * try { verifyAccessToken(token, options); }
 * catch (error) { if (error instanceof TokenRejectedError) response.writeHead(401).end(); }
 * ```
 */
export class TokenRejectedError extends Error {
  override readonly name = "TokenRejectedError";
}

function decodeSegment(segment: string | undefined): Record<string, unknown> {
  if (segment === undefined) throw new TokenRejectedError("not a JWT");
  const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  if (typeof value !== "object" || value === null) throw new TokenRejectedError("not a JWT");
  return value as Record<string, unknown>;
}

/**
 * The verified payload of `token`, or a {@link TokenRejectedError} saying what is wrong.
 *
 * @example
 * ```ts
 * const claims = verifyAccessToken(token, { jwks, audience: "https://storage.azure.com" });
 * console.log(claims.exp);
 * ```
 */
export function verifyAccessToken(
  token: string,
  options: VerifyOptions,
): Record<string, unknown> & { exp: number } {
  const [headerPart, payloadPart, signaturePart] = token.split(".");
  if (signaturePart === undefined) throw new TokenRejectedError("not a JWT");
  const header = decodeSegment(headerPart);
  if (header["alg"] !== "RS256")
    throw new TokenRejectedError(`unexpected alg ${String(header["alg"])}`);
  const jwk = options.jwks.keys.find((key) => key["kid"] === header["kid"]);
  if (jwk === undefined) throw new TokenRejectedError("unknown signing key");
  const key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  const valid = verify(
    "RSA-SHA256",
    Buffer.from(`${headerPart}.${payloadPart}`),
    key,
    Buffer.from(signaturePart, "base64url"),
  );
  if (!valid) throw new TokenRejectedError("bad signature");
  const payload = decodeSegment(payloadPart);
  const nowSeconds = (options.now ?? Date.now)() / 1_000;
  if (payload["aud"] !== options.audience)
    throw new TokenRejectedError(`wrong audience ${String(payload["aud"])}`);
  if (typeof payload["exp"] !== "number" || payload["exp"] <= nowSeconds)
    throw new TokenRejectedError("expired");
  if (typeof payload["nbf"] === "number" && payload["nbf"] > nowSeconds)
    throw new TokenRejectedError("not yet valid");
  return payload as Record<string, unknown> & { exp: number };
}
