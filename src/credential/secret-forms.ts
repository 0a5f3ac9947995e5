/**
 * Every form in which a client secret can come back from a server that echoes the request:
 * what the error scrubber must remove besides the secret itself (issue #18, item 4: MSAL
 * sends `client_secret=` URL-encoded, so a secret with `+`, `/` or `=` came back encoded and
 * passed a scrubber that knew only the literal).
 */

/** `application/x-www-form-urlencoded` as `URLSearchParams` writes it (WHATWG URL). */
function formEncode(text: string): string {
  return new URLSearchParams({ v: text }).toString().slice(2);
}

/** The same percent-encoding with lower-case hex digits, as some servers re-encode it. */
function lowerHex(encoded: string): string {
  return encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
}

/**
 * The strings that reveal `secret`, longest first (so a longer form is removed before a
 * shorter one inside it): the secret as is; URL-encoded as MSAL sends `client_secret=`
 * (`encodeURIComponent`), with `+` for space, and as `application/x-www-form-urlencoded`
 * (WHATWG `URLSearchParams`), in upper- and lower-case hex; and, with `clientId`, the
 * base64 credentials of HTTP Basic (`clientId:secret`, raw and form-encoded first, as
 * RFC 6749 section 2.3.1 asks).
 *
 * @example
 * ```ts
 * secretForms("a+b/c=", "app"); // ["YXBwOmElMkJiJTJGYyUzRA==", "YXBwOmErYi9jPQ==", "a%2Bb%2Fc%3D", "a%2bb%2fc%3d", "a+b/c="]
 * ```
 */
export function secretForms(secret: string, clientId?: string): string[] {
  if (secret === "") return [];
  const encoded = encodeURIComponent(secret);
  const forms = new Set([secret, encoded, encoded.replaceAll("%20", "+"), formEncode(secret)]);
  for (const form of [...forms]) forms.add(lowerHex(form));
  if (clientId !== undefined && clientId !== "") {
    forms.add(Buffer.from(`${clientId}:${secret}`).toString("base64"));
    forms.add(Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString("base64"));
  }
  return [...forms].sort((a, b) => b.length - a.length);
}
