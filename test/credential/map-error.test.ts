import { AuthError, ClientAuthErrorCodes, ServerError } from "@azure/msal-node";
import { describe, expect, it } from "vitest";
import { classify, mapError, parseRetryAfter } from "../../src/credential/map-error.js";
import type { AuthenticationError } from "../../src/errors/index.js";
import { AbortError, isAbortError, isAuthenticationError } from "../../src/errors/index.js";

const secret = "canary-secret-value";

function entraBody(error: string, code: number): Record<string, unknown> {
  return {
    error,
    error_description: `AADSTS${code}: something happened.\r\nTrace ID: trace-1\r\nCorrelation ID: corr-1\r\nTimestamp: 2025-01-01 00:00:00Z`,
    error_codes: [code],
    timestamp: "2025-01-01 00:00:00Z",
    trace_id: "trace-1",
    correlation_id: "corr-1",
  };
}

function mapped(error: unknown, status: number, body: unknown, headers = {}): AuthenticationError {
  const result = mapError(error, {
    response: { status, headers, body },
    correlationId: "ours",
    secrets: [secret],
    now: () => Date.parse("2025-01-01T00:00:00Z"),
  });
  expect(isAuthenticationError(result)).toBe(true);
  return result as AuthenticationError;
}

describe("mapError: permanent service errors", () => {
  it.each([
    ["wrong secret", 401, "invalid_client", 7000215],
    ["expired secret", 401, "invalid_client", 7000222],
    ["unknown client", 400, "unauthorized_client", 700016],
    ["unknown tenant", 400, "invalid_request", 90002],
    ["bad scope", 400, "invalid_scope", 70011],
  ])("%s is permanent with AADSTS code, trace and correlation ids", (_n, status, error, code) => {
    const msal = new ServerError(error, "corr-1", `Error(s): ${code}`, "", String(code), status);
    const result = mapped(msal, status, entraBody(error, code));
    expect(result.statusCode).toBe(status);
    expect(result.transient).toBe(false);
    expect(result.errorResponse).toMatchObject({
      error,
      errorCodes: [code],
      traceId: "trace-1",
      correlationId: "corr-1",
      timestamp: "2025-01-01 00:00:00Z",
    });
    expect(result.message).toContain(`AADSTS${code}`);
    expect(result.cause).toBe(msal);
  });

  it("maps a ServerError without a recorded response from its own fields", () => {
    const msal = new ServerError(
      "invalid_client",
      "corr-2",
      "AADSTS7000215: bad",
      "",
      "7000215",
      401,
    );
    const result = mapError(msal) as AuthenticationError;
    expect(result.statusCode).toBe(401);
    expect(result.transient).toBe(false);
    expect(result.errorResponse.errorCodes).toEqual([7000215]);
    expect(result.errorResponse.correlationId).toBe("corr-2");
  });
});

describe("mapError: transient errors", () => {
  it.each([408, 429, 500, 502, 503, 504])("HTTP %i is transient", (status) => {
    const msal = new ServerError("server_error", "c", "x", "", undefined, status);
    expect(mapped(msal, status, entraBody("server_error", 50000)).transient).toBe(true);
  });

  it("Retry-After in seconds and as an HTTP-date becomes retryAfterMs", () => {
    const msal = new ServerError("too_many_requests", "c", "x", "", undefined, 429);
    expect(mapped(msal, 429, {}, { "retry-after": "3" }).retryAfterMs).toBe(3000);
    expect(
      mapped(msal, 503, {}, { "retry-after": "Wed, 01 Jan 2025 00:00:05 GMT" }).retryAfterMs,
    ).toBe(5000);
  });

  it("a non-JSON gateway page keeps its status and is transient", () => {
    const parsing = new AuthError(ClientAuthErrorCodes.tokenParsingError, "", "Failed to parse");
    const result = mapped(parsing, 502, "<html>Bad gateway</html>");
    expect(result.statusCode).toBe(502);
    expect(result.transient).toBe(true);
  });

  it("MSAL network_error and fetch TypeErrors are transient with status 0", () => {
    const network = new AuthError(ClientAuthErrorCodes.networkError, "", "Request timeout");
    const a = mapError(network) as AuthenticationError;
    expect([a.statusCode, a.transient, a.errorResponse.error]).toEqual([0, true, "network_error"]);
    const b = mapError(new TypeError("fetch failed")) as AuthenticationError;
    expect([b.statusCode, b.transient]).toEqual([0, true]);
  });
});

describe("mapError: other failures", () => {
  it("a DOM AbortError becomes our AbortError; ours pass through", () => {
    const dom = new DOMException("aborted", "AbortError");
    expect(isAbortError(mapError(dom))).toBe(true);
    const ours = new AbortError("x");
    expect(mapError(ours)).toBe(ours);
  });

  it("a malformed 200 body is a permanent AuthenticationError", () => {
    const parsing = new AuthError(ClientAuthErrorCodes.tokenParsingError, "", "Failed to parse");
    const result = mapError(parsing) as AuthenticationError;
    expect(result.transient).toBe(false);
    expect(result.errorResponse.error).toBe("token_parsing_error");
  });

  it("never lets the secret through", () => {
    const leaky = new ServerError(
      "invalid_client",
      "c",
      `secret was ${secret}`,
      "",
      "7000215",
      401,
    );
    const result = mapped(leaky, 401, {
      error: "invalid_client",
      error_description: `got ${secret}`,
    });
    expect(result.message).not.toContain(secret);
    expect(JSON.stringify(result)).not.toContain(secret);
    const plain = mapError(new TypeError(`connect ${secret}`), { secrets: [secret] });
    expect(plain.message).not.toContain(secret);
  });
});

describe("classify and parseRetryAfter", () => {
  it("classifies through the mapper", () => {
    expect(classify(new ServerError("x", "c", "m", "", undefined, 503))).toEqual({
      transient: true,
      retryAfterMs: undefined,
    });
    expect(
      classify(new ServerError("invalid_client", "c", "m", "", "7000215", 401)).transient,
    ).toBe(false);
    expect(classify(new AbortError("x"))).toEqual({ transient: false });
  });

  it("parses both forms and ignores garbage", () => {
    expect(parseRetryAfter("1.5", 0)).toBe(1500);
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:10 GMT", 4000)).toBe(6000);
    // A past date is no hint (issue #18): the backoff decides.
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:01 GMT", 4000)).toBeUndefined();
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});
