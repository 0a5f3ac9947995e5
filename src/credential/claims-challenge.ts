import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import {
  catchError,
  defer,
  from,
  switchMap,
  throwError,
  type MonoTypeOperatorFunction,
  type Observable,
} from "rxjs";
import { ClaimsChallengeError } from "../errors/index.js";
import { validateClaims } from "./validation.js";

/** One challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** The scheme, lower-cased (`bearer`, `pop`). */
  readonly scheme: string;
  /** Parameters by lower-cased name, values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1): several challenges in one header,
 * quoted values holding commas or escaped quotes, token68 values.
 *
 * @example
 * ```ts
 * parseWwwAuthenticate('Bearer realm="", error="insufficient_claims", claims="eyJ..."');
 * // [{ scheme: "bearer", params: { realm: "", error: "insufficient_claims", claims: "eyJ..." } }]
 * ```
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpaces = (): void => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && !/[\s,=]/.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpaces();
    while (i < n && header[i] === ",") {
      i++;
      skipSpaces();
    }
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === "") {
      i++;
      continue;
    }
    const current = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    challenges.push(current);
    skipSpaces();
    // Parameters until the next challenge (a token followed by a space, not by "=").
    for (;;) {
      skipSpaces();
      while (i < n && header[i] === ",") {
        i++;
        skipSpaces();
      }
      if (i >= n) break;
      const save = i;
      const name = readToken();
      skipSpaces();
      if (header[i] !== "=") {
        // A new challenge's scheme (or a token68 of this one): rewind and stop.
        i = save;
        break;
      }
      i++; // "="
      skipSpaces();
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i++;
        value = header.slice(start, i);
      }
      current.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

function decodeBase64(value: string): string | undefined {
  const normalized = value.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normalized)) return undefined;
  return Buffer.from(normalized, "base64").toString("utf8");
}

/**
 * Returns the claims JSON a resource demands in a `WWW-Authenticate` header (the
 * base64-decoded `claims` parameter of a Bearer challenge, as CAE and conditional access send
 * it), or `undefined` when the header holds no claims challenge.
 *
 * @throws {@link ClaimsChallengeError} when the challenge's claims cannot be decoded into a
 *   JSON object (it cannot be satisfied)
 * @example
 * ```ts
 * const claims = parseClaimsChallenge(response.headers.get("www-authenticate") ?? "");
 * if (claims) await credential.getToken(scope, { claims, enableCae: true });
 * ```
 */
export function parseClaimsChallenge(header: string): string | undefined {
  for (const challenge of parseWwwAuthenticate(header)) {
    if (challenge.scheme !== "bearer" && challenge.scheme !== "pop") continue;
    const encoded = challenge.params["claims"];
    if (encoded === undefined || encoded === "") continue;
    const decoded = decodeBase64(encoded);
    try {
      if (decoded === undefined) throw new Error("not base64");
      return validateClaims(decoded) ?? "";
    } catch (error) {
      throw new ClaimsChallengeError(
        `The resource sent a claims challenge whose claims are not a base64-encoded JSON object${challenge.params["error"] ? ` (error="${challenge.params["error"]}")` : ""}: it cannot be satisfied.`,
        decoded ?? encoded,
        { cause: error },
      );
    }
  }
  return undefined;
}

/** Options of {@link retryOnClaimsChallenge}. */
export interface RetryOnClaimsChallengeOptions<T> {
  /** The credential that acquires the token with the demanded claims. */
  readonly credential: TokenCredential;
  /** Scopes of the resource. */
  readonly scopes: string | string[];
  /**
   * `tenantId` and `enableCae` of the new request.
   * @default { enableCae: true } (claims challenges come from CAE-aware resources)
   */
  readonly getTokenOptions?: Pick<GetTokenOptions, "tenantId" | "enableCae"> | undefined;
  /** The `WWW-Authenticate` header of a failure, or `undefined` when it is no challenge. */
  readonly challengeOf: (error: unknown) => string | undefined;
  /** Performs the call again with the new token. */
  readonly retry: (token: AccessToken) => Observable<T>;
  /**
   * How many challenges in a row are answered before giving up with a
   * `ClaimsChallengeError`.
   * @default 1
   */
  readonly maxChallenges?: number | undefined;
}

/**
 * An operator that answers a resource's claims challenge: when the source fails with a
 * `WWW-Authenticate` claims challenge, it acquires a token with those claims and performs
 * the call again through `retry`. A challenge that cannot be satisfied (undecodable claims,
 * the token request failing, or a challenge again after `maxChallenges`) becomes a
 * {@link ClaimsChallengeError} carrying the claims. Other errors pass through.
 *
 * @example
 * ```ts
 * callResource(token).pipe(
 *   retryOnClaimsChallenge({
 *     credential, scopes,
 *     challengeOf: (err) => (err as HttpError).headers?.["www-authenticate"],
 *     retry: (fresh) => callResource(fresh),
 *   }),
 * );
 * ```
 */
export function retryOnClaimsChallenge<T>(
  options: RetryOnClaimsChallengeOptions<T>,
): MonoTypeOperatorFunction<T> {
  const maxChallenges = options.maxChallenges ?? 1;
  const tokenOptions = options.getTokenOptions ?? { enableCae: true };
  return (source) => {
    const handle =
      (answered: number) =>
      (error: unknown): Observable<T> => {
        const header = options.challengeOf(error);
        if (header === undefined) return throwError(() => error);
        let claims: string | undefined;
        try {
          claims = parseClaimsChallenge(header);
        } catch (challengeError) {
          return throwError(() => challengeError);
        }
        if (claims === undefined) return throwError(() => error);
        const demanded = claims;
        if (answered >= maxChallenges) {
          return throwError(
            () =>
              new ClaimsChallengeError(
                `The resource kept sending claims challenges after ${answered} answered: the demanded claims cannot be satisfied by this credential.`,
                demanded,
                { cause: error },
              ),
          );
        }
        return defer(() =>
          from(options.credential.getToken(options.scopes, { ...tokenOptions, claims: demanded })),
        ).pipe(
          catchError((tokenError: unknown) =>
            throwError(
              () =>
                new ClaimsChallengeError(
                  "A token with the demanded claims could not be acquired.",
                  demanded,
                  { cause: tokenError },
                ),
            ),
          ),
          switchMap((token) => {
            if (token === null) {
              return throwError(
                () => new ClaimsChallengeError("The credential returned no token.", demanded),
              );
            }
            return options.retry(token).pipe(catchError(handle(answered + 1)));
          }),
        );
      };
    return source.pipe(catchError(handle(0)));
  };
}
