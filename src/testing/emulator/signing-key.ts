import { createHash, generateKeyPairSync, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";

/** The RSA key the emulator signs tokens with (RS256), and its JWKS. */
export interface SigningKey {
  /** Key id, in every token header and in the JWKS. */
  readonly kid: string;
  /** The JSON Web Key Set with the public key. */
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] };
  /** Signs `payload` as a compact JWT. */
  sign(payload: Record<string, unknown>): string;
  /** Checks the signature and returns the payload, or throws. */
  verify(token: string): Record<string, unknown>;
}

/**
 * Generates a fresh 2048-bit RSA signing key.
 *
 * @example
 * ```ts
 * const key = createSigningKey();
 * const jwt = key.sign({ aud: "https://storage.azure.com" });
 * key.verify(jwt).aud; // "https://storage.azure.com"
 * ```
 */
export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = publicKey.export({ format: "jwk" });
  // Like Entra ID, the key id is the key's own thumbprint (RFC 7638 over e, kty, n).
  const kid = createHash("sha256")
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest("base64url");
  const header = base64UrlJson({ typ: "JWT", alg: "RS256", kid });
  return {
    kid,
    jwks: { keys: [{ kty: "RSA", use: "sig", alg: "RS256", kid, n: jwk.n, e: jwk.e }] },
    sign: (payload) => {
      const signingInput = `${header}.${base64UrlJson(payload)}`;
      const signature = sign("sha256", Buffer.from(signingInput), privateKey);
      return `${signingInput}.${signature.toString("base64url")}`;
    },
    verify: (token) => verifyJwt(token, publicKey),
  };
}

function verifyJwt(token: string, publicKey: KeyObject): Record<string, unknown> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("Not a compact JWT: expected three dot-separated parts");
  const [header, payload, signature] = parts as [string, string, string];
  const ok = verify(
    "sha256",
    Buffer.from(`${header}.${payload}`),
    publicKey,
    Buffer.from(signature, "base64url"),
  );
  if (!ok) throw new Error("The token's signature does not verify with the emulator's key");
  const decoded: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
    throw new Error("The token's payload is not a JSON object");
  }
  return decoded as Record<string, unknown>;
}

function base64UrlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}
