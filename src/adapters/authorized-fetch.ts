import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { parseClaimsChallenge } from "../credential/claims-challenge.js";
import {
  ClaimsChallengeError,
  CredentialUnavailableError,
  InvalidArgumentError,
} from "../errors/index.js";
import { validateScopes } from "../credential/validation.js";

/** The shape of the platform's `fetch`: what {@link authorizedFetch} takes and returns. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of {@link authorizedFetch}. */
export interface AuthorizedFetchOptions {
  /**
   * The `fetch` that sends the requests (one with its own dispatcher, a test double, a
   * polyfill).
   * @default globalThis.fetch
   */
  readonly fetch?: FetchLike | undefined;
  /**
   * Tenant to ask tokens from (must be allowed by the credential).
   * @default the credential's tenant
   */
  readonly tenantId?: string | undefined;
  /**
   * Ask for CAE-enabled tokens from the first request on. A claims challenge is always
   * answered with a CAE token, whatever this says.
   * @default false
   */
  readonly enableCae?: boolean | undefined;
  /**
   * Send the bearer token to `http:` URLs too. Only for a resource on loopback in a test: a
   * token sent in clear text can be replayed by anyone on the path.
   * @default false
   */
  readonly allowInsecureConnection?: boolean | undefined;
}

/** What a refused token is replaced with, until the credential hands out another. */
interface Replacement {
  readonly rejected: string;
  readonly token: AccessToken;
}

/** A token this close to expiry is not reused as a replacement (the engine's forced window). */
const REPLACEMENT_MARGIN_MS = 30_000;

/**
 * The claims a plain 401 is answered with: "a token issued no earlier than now", the form CAE
 * resources use to demand a token newer than a revoked one. Claims make every Azure
 * credential go to the network (MSAL skips its cache for them; rx-identity never serves a
 * claims request from its cache), which is the only way `TokenCredential` offers to get a
 * token other than the one just refused.
 */
function issuedAfterClaims(nowMs: number): string {
  return JSON.stringify({
    access_token: { nbf: { essential: true, value: String(Math.floor(nowMs / 1000)) } },
  });
}

function isStreamBody(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  if (typeof body === "string" || body instanceof URLSearchParams) return false;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return false;
  if (typeof Blob !== "undefined" && body instanceof Blob) return false;
  if (typeof FormData !== "undefined" && body instanceof FormData) return false;
  // A ReadableStream, an async iterable, or something unknown: it may be read only once.
  return true;
}

/**
 * Whether the request can be sent a second time: a `string`, `URLSearchParams`, `Blob`,
 * `BufferSource` or `FormData` body is serialised afresh by every `fetch`; a stream is
 * consumed by the first one. A `Request` with a body carries it as a stream.
 */
function canResend(input: string | URL | Request, init: RequestInit | undefined): boolean {
  if (init?.body !== undefined) return !isStreamBody(init.body);
  return !(input instanceof Request && input.body !== null);
}

function urlOf(input: string | URL | Request): URL {
  const href = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
  try {
    return new URL(href);
  } catch (error) {
    throw new InvalidArgumentError(
      `authorizedFetch: ${JSON.stringify(String(href))} is not an absolute URL: pass the full https:// address of the resource.`,
      { cause: error },
    );
  }
}

async function discard(response: Response): Promise<void> {
  // Frees the connection of an answer nobody reads.
  await response.body?.cancel().catch(() => undefined);
}

/**
 * A `fetch` that authenticates every request with a bearer token from `credential`, for
 * resources the Azure SDK has no client for (Microsoft Graph, your own APIs).
 *
 * - Sets `Authorization: Bearer <token>` (replacing any the request had).
 * - On a `401` with a CAE claims challenge (`WWW-Authenticate: Bearer ...
 *   error="insufficient_claims", claims="..."`) it acquires a token with those claims and
 *   `enableCae`, and sends the request once more.
 * - On a `401` without claims it takes a fresh token (one requested with a demand to be issued
 *   after now, so it never is the token just refused) and sends the request once more.
 * - After either retry, later calls use the new token while the credential still hands out
 *   the refused one (and the new one has more than 30 s left).
 * - Never more than one retry: the second answer is returned as it is, whatever it is.
 * - A request whose body is a stream (a `ReadableStream`, an async iterable, or a `Request`
 *   object with a body) cannot be sent twice: its `401` is returned as it is, with no retry.
 *   Pass the body as a string, `Uint8Array`, `Blob`, `URLSearchParams` or `FormData` to get
 *   the retry.
 *
 * Rejects with {@link ClaimsChallengeError} when a claims challenge cannot be satisfied (its
 * claims are not base64 JSON, or no token with them can be had), with the credential's own
 * typed error when no token can be had at all, and with {@link InvalidArgumentError} for an
 * `http:` URL (a bearer token is never sent in clear text unless `allowInsecureConnection`).
 *
 * @param credential - any `TokenCredential` (a `ClientSecretCredential`, `@azure/identity`'s)
 * @param scopes - the resource's scopes, such as `"https://graph.microsoft.com/.default"`
 * @param options - see {@link AuthorizedFetchOptions}
 * @throws {@link InvalidArgumentError} at once for a credential without `getToken` or bad scopes
 * @example
 * ```ts
 * const graph = authorizedFetch(credential, "https://graph.microsoft.com/.default");
 * const response = await graph("https://graph.microsoft.com/v1.0/applications?$top=1");
 * console.log(response.status, await response.json());
 * ```
 */
export function authorizedFetch(
  credential: TokenCredential,
  scopes: string | readonly string[],
  options: AuthorizedFetchOptions = {},
): FetchLike {
  if (
    typeof credential !== "object" ||
    credential === null ||
    typeof (credential as Partial<TokenCredential>).getToken !== "function"
  ) {
    throw new InvalidArgumentError(
      "authorizedFetch: `credential` must be a TokenCredential (an object with getToken), such as a ClientSecretCredential.",
    );
  }
  // The credential checks scopes again per request; checking here fails a typo at creation.
  const scopeList = [...validateScopes(scopes)];
  const send: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  if (typeof send !== "function") {
    throw new InvalidArgumentError(
      "authorizedFetch: `fetch` must be a function with the signature of the platform's fetch.",
    );
  }
  const baseOptions: GetTokenOptions = {
    ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }),
    ...(options.enableCae === true ? { enableCae: true } : {}),
  };
  let replacement: Replacement | undefined;

  const tokenOf = async (extra: GetTokenOptions): Promise<AccessToken> => {
    const token = await credential.getToken(scopeList, { ...baseOptions, ...extra });
    if (token === null) {
      throw new CredentialUnavailableError(
        "authorizedFetch: the credential returned no token; check its configuration.",
      );
    }
    return token;
  };

  return async (input, init) => {
    const url = urlOf(input);
    if (url.protocol !== "https:" && options.allowInsecureConnection !== true) {
      throw new InvalidArgumentError(
        `authorizedFetch: refusing to send a bearer token to ${url.protocol}//${url.host} in clear text: use https:// (or allowInsecureConnection for a loopback test server).`,
      );
    }
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const abort: GetTokenOptions = signal ? { abortSignal: signal } : {};
    const call = (token: AccessToken): Promise<Response> => {
      const headers = new Headers(
        init?.headers ?? (input instanceof Request ? input.headers : undefined),
      );
      headers.set("authorization", `Bearer ${token.token}`);
      return send(input, { ...init, headers });
    };

    let token = await tokenOf(abort);
    const handedOut = token.token;
    const held = replacement;
    if (
      held !== undefined &&
      held.rejected === handedOut &&
      held.token.expiresOnTimestamp - Date.now() > REPLACEMENT_MARGIN_MS
    ) {
      token = held.token;
    }
    const first = await call(token);
    if (first.status !== 401 || !canResend(input, init)) return first;

    const challenge = first.headers.get("www-authenticate") ?? "";
    let claims: string | undefined;
    try {
      claims = parseClaimsChallenge(challenge);
    } catch (error) {
      await discard(first);
      throw error;
    }
    let next: AccessToken;
    if (claims !== undefined) {
      const demanded = claims;
      next = await tokenOf({ ...abort, claims: demanded, enableCae: true }).catch(
        (error: unknown) => {
          throw new ClaimsChallengeError(
            `authorizedFetch: ${url.host} demanded claims, and no token with them could be acquired.`,
            demanded,
            { cause: error },
          );
        },
      );
    } else {
      next = await tokenOf({ ...abort, claims: issuedAfterClaims(Date.now()) });
    }
    // Claims tokens are never cached by the credential: without this, every later call would
    // send the refused token first and pay for a 401 and a token request each time.
    replacement = { rejected: handedOut, token: next };
    await discard(first);
    return call(next);
  };
}
