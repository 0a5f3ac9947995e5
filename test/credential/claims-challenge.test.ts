import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { firstValueFrom, of, throwError } from "rxjs";
import { describe, expect, it } from "vitest";
import {
  parseClaimsChallenge,
  parseWwwAuthenticate,
  retryOnClaimsChallenge,
} from "../../src/credential/claims-challenge.js";
import { isClaimsChallengeError } from "../../src/errors/index.js";

const claims = '{"access_token":{"nbf":{"essential":true,"value":"1726077595"}}}';
const encoded = Buffer.from(claims).toString("base64");

describe("parseWwwAuthenticate", () => {
  it("parses several challenges with quoted commas and escapes", () => {
    const header = `Basic realm="a, b", Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="${encoded}", PoP nonce=abc`;
    const challenges = parseWwwAuthenticate(header);
    expect(challenges.map((c) => c.scheme)).toEqual(["basic", "bearer", "pop"]);
    expect(challenges[0]!.params["realm"]).toBe("a, b");
    expect(challenges[1]!.params).toMatchObject({ error: "insufficient_claims", claims: encoded });
    expect(challenges[2]!.params["nonce"]).toBe("abc");
    expect(parseWwwAuthenticate('Bearer realm="say \\"hi\\""')[0]!.params["realm"]).toBe(
      'say "hi"',
    );
  });
});

describe("parseClaimsChallenge", () => {
  it("returns the decoded claims of a Bearer challenge", () => {
    const header = `Bearer realm="", authorization_uri="https://x/authorize", error="insufficient_claims", claims="${encoded}"`;
    expect(parseClaimsChallenge(header)).toBe(claims);
  });

  it("finds the challenge after another one and accepts base64url", () => {
    const url = encoded.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(parseClaimsChallenge(`Basic realm="x", Bearer claims="${url}"`)).toBe(claims);
  });

  it("returns undefined without claims", () => {
    expect(parseClaimsChallenge('Bearer realm="", error="invalid_token"')).toBeUndefined();
    expect(parseClaimsChallenge("")).toBeUndefined();
  });

  it("throws ClaimsChallengeError for claims that are not a JSON object", () => {
    const bad = Buffer.from("[1,2]").toString("base64");
    let error: unknown;
    try {
      parseClaimsChallenge(`Bearer error="insufficient_claims", claims="${bad}"`);
    } catch (caught) {
      error = caught;
    }
    expect(isClaimsChallengeError(error)).toBe(true);
    expect((error as { claims: string }).claims).toBe("[1,2]");
  });
});

describe("retryOnClaimsChallenge", () => {
  const challenge = { header: `Bearer error="insufficient_claims", claims="${encoded}"` };
  const token = (value: string): AccessToken => ({
    token: value,
    expiresOnTimestamp: Date.now() + 3_600_000,
    tokenType: "Bearer",
  });

  function fakeCredential(calls: GetTokenOptions[], fail = false): TokenCredential {
    return {
      getToken: (_scopes, options) => {
        calls.push(options ?? {});
        return fail ? Promise.reject(new Error("refused")) : Promise.resolve(token("with-claims"));
      },
    };
  }

  it("re-acquires with the demanded claims and retries once", async () => {
    const calls: GetTokenOptions[] = [];
    const result = await firstValueFrom(
      throwError(() => challenge).pipe(
        retryOnClaimsChallenge({
          credential: fakeCredential(calls),
          scopes: "https://x/.default",
          challengeOf: (e) => (e as typeof challenge).header,
          retry: (t) => of(`called with ${t.token}`),
        }),
      ),
    );
    expect(result).toBe("called with with-claims");
    expect(calls).toEqual([{ enableCae: true, claims }]);
  });

  it("gives up with ClaimsChallengeError carrying the claims when challenged again", async () => {
    const calls: GetTokenOptions[] = [];
    const error = await firstValueFrom(
      throwError(() => challenge).pipe(
        retryOnClaimsChallenge({
          credential: fakeCredential(calls),
          scopes: "https://x/.default",
          challengeOf: (e) => (e as typeof challenge).header,
          retry: () => throwError(() => challenge),
        }),
      ),
    ).catch((e: unknown) => e);
    expect(isClaimsChallengeError(error)).toBe(true);
    expect((error as { claims: string }).claims).toBe(claims);
    expect(calls).toHaveLength(1);
  });

  it("turns a failed claims acquisition into ClaimsChallengeError and passes other errors", async () => {
    const failed = await firstValueFrom(
      throwError(() => challenge).pipe(
        retryOnClaimsChallenge({
          credential: fakeCredential([], true),
          scopes: "s",
          challengeOf: (e) => (e as typeof challenge).header,
          retry: () => of(1),
        }),
      ),
    ).catch((e: unknown) => e);
    expect(isClaimsChallengeError(failed)).toBe(true);
    const other = new Error("not a challenge");
    const passed = await firstValueFrom(
      throwError(() => other).pipe(
        retryOnClaimsChallenge({
          credential: fakeCredential([]),
          scopes: "s",
          challengeOf: () => undefined,
          retry: () => of(1),
        }),
      ),
    ).catch((e: unknown) => e);
    expect(passed).toBe(other);
  });
});
