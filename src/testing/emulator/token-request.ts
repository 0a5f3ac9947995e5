/** A token request as the emulator reads it, before any validation. */
export interface ParsedTokenRequest {
  readonly grantType: string | undefined;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  /** A `client_assertion` (a JWT, for workload identity federation), when sent. */
  readonly clientAssertion: string | undefined;
  readonly clientAssertionType: string | undefined;
  readonly authMethod: "post" | "basic" | "assertion" | "none";
  readonly scopes: readonly string[];
  /** Claims without the `xms_cc` capabilities, compact JSON, or `undefined`. */
  readonly claims: string | undefined;
  readonly clientCapabilities: readonly string[];
  /** Whether the `claims` parameter was present but not a JSON object. */
  readonly claimsInvalid: boolean;
  readonly correlationId: string | undefined;
}

/**
 * Reads a `client_credentials` request: the form body, HTTP Basic client authentication
 * (RFC 6749 section 2.3.1: form-urlencoded id and secret), a `client_assertion` (RFC 7523), and the `claims` parameter into
 * which MSAL merges client capabilities (`{"access_token":{"xms_cc":{"values":["cp1"]}}}`).
 *
 * @example
 * ```ts
 * const request = parseTokenRequest("grant_type=client_credentials&client_id=a&client_secret=b&scope=x%2F.default", undefined);
 * request.authMethod; // "post"
 * ```
 */
export function parseTokenRequest(
  body: string,
  headers: {
    readonly authorization?: string | undefined;
    readonly "client-request-id"?: string | string[] | undefined;
  },
): ParsedTokenRequest {
  const form = new URLSearchParams(body);
  let clientId = form.get("client_id") ?? undefined;
  let clientSecret = form.get("client_secret") ?? undefined;
  const clientAssertion = form.get("client_assertion") ?? undefined;
  let authMethod: ParsedTokenRequest["authMethod"] =
    clientSecret !== undefined ? "post" : clientAssertion !== undefined ? "assertion" : "none";

  const basic = /^Basic\s+(\S+)$/i.exec(headers.authorization ?? "");
  if (basic?.[1] !== undefined) {
    const decoded = Buffer.from(basic[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon >= 0) {
      const basicId = safeDecode(decoded.slice(0, colon));
      clientId ??= basicId;
      if (basicId === clientId) {
        clientSecret = safeDecode(decoded.slice(colon + 1));
        authMethod = "basic";
      }
    }
  }

  const scopes = (form.get("scope") ?? "").split(" ").filter((scope) => scope.length > 0);
  const { claims, clientCapabilities, invalid } = splitClaims(form.get("claims") ?? undefined);
  const requestId = headers["client-request-id"];
  return {
    grantType: form.get("grant_type") ?? undefined,
    clientId,
    clientSecret,
    clientAssertion,
    clientAssertionType: form.get("client_assertion_type") ?? undefined,
    authMethod,
    scopes,
    claims,
    clientCapabilities,
    claimsInvalid: invalid,
    correlationId: typeof requestId === "string" ? requestId : undefined,
  };
}

const msalDefaultIdTokenClaims = new Set(["signin_state", "login_hint", "tenant_region_sub_scope"]);

function splitClaims(raw: string | undefined): {
  claims: string | undefined;
  clientCapabilities: readonly string[];
  invalid: boolean;
} {
  if (raw === undefined || raw === "")
    return { claims: undefined, clientCapabilities: [], invalid: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { claims: undefined, clientCapabilities: [], invalid: true };
  }
  if (!isObject(parsed)) return { claims: undefined, clientCapabilities: [], invalid: true };
  const rest: Record<string, unknown> = { ...parsed };
  let clientCapabilities: string[] = [];
  const accessToken = rest["access_token"];
  if (isObject(accessToken) && "xms_cc" in accessToken) {
    const { xms_cc: capabilities, ...others } = accessToken;
    if (isObject(capabilities) && Array.isArray(capabilities["values"])) {
      clientCapabilities = capabilities["values"].filter(
        (value): value is string => typeof value === "string",
      );
    }
    if (Object.keys(others).length > 0) rest["access_token"] = others;
    else delete rest["access_token"];
  }
  // msal-common's buildMergedClaims adds these optional id-token claims to every request
  // with claims or capabilities; they are MSAL's, not the caller's, so they are left out.
  const idToken = rest["id_token"];
  if (isObject(idToken)) {
    const callers = Object.fromEntries(
      Object.entries(idToken).filter(
        ([key, value]) =>
          !(msalDefaultIdTokenClaims.has(key) && isObject(value) && value["essential"] === false),
      ),
    );
    if (Object.keys(callers).length > 0) rest["id_token"] = callers;
    else delete rest["id_token"];
  }
  return {
    claims: Object.keys(rest).length > 0 ? JSON.stringify(rest) : undefined,
    clientCapabilities,
    invalid: false,
  };
}

/** Compact, key-sorted JSON, so equal claims compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    return value;
  }
}
