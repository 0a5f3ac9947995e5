import { readFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { createSecureContext, rootCertificates } from "node:tls";
import { AuthError, ClientAuthErrorCodes } from "@azure/msal-node";
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from "@azure/msal-node";
import type { SchedulerLike } from "rxjs";

/** Options of {@link createNetworkClient}. */
export interface NetworkClientOptions {
  /**
   * Extra certificate authorities (PEM) this client trusts, on top of Node's bundled roots
   * and the file named by `NODE_EXTRA_CA_CERTS`. Only this client trusts them: nothing
   * process-wide changes. Used to reach the local Entra ID emulator of `rx-identity/testing`.
   * @default [] (only the usual roots)
   */
  readonly ca?: string | readonly string[] | undefined;
  /**
   * Time limit of one request (connect, send, and read the whole response), in milliseconds.
   * A per-call limit given to {@link NetworkClient.run} or by MSAL wins over it.
   * @default undefined (no limit)
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Largest response body accepted, in bytes: a bigger one fails as a network error.
   * @default 1_048_576 (1 MiB)
   */
  readonly maxResponseBytes?: number | undefined;
  /**
   * The clock of the request time limit: the credential passes its own scheduler, so a hung
   * request times out on the same (possibly virtual) clock as every other timer.
   * @default a Node timer that does not keep the process alive
   */
  readonly scheduler?: SchedulerLike | undefined;
}

/**
 * What {@link NetworkClient.run} applies to the requests MSAL sends on behalf of one call,
 * found by the call's MSAL correlation id.
 *
 * @example
 * ```ts
 * const correlationId = crypto.randomUUID();
 * const context: RequestContext = { correlationId, signal, timeoutMs: 10_000 };
 * await networkClient.run(context, () =>
 *   app.acquireTokenByClientCredential({ scopes, correlationId }),
 * );
 * ```
 */
export interface RequestContext {
  /**
   * The `correlationId` the callback gives MSAL: MSAL passes it back in the request options
   * of each token POST, which is how this client finds the context. Unique per pending call.
   */
  readonly correlationId: string;
  /**
   * Aborting it destroys the in-flight token request, which rejects with a `network_error`,
   * and makes {@link NetworkClient.run} reject at once, whatever request is in flight.
   * @default undefined (not cancellable)
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Time limit of each token request made in the callback, in milliseconds.
   * @default the client's `timeoutMs`
   */
  readonly timeoutMs?: number | undefined;
}

/**
 * An MSAL network module (`system.networkClient`) over `node:https` with its own keep-alive
 * agent, so extra CA certificates are trusted by this client only, and a request can be
 * cancelled with an `AbortSignal` even though MSAL's API takes none.
 */
export interface NetworkClient extends INetworkModule {
  /**
   * Runs `fn` (typically one `acquireTokenByClientCredential` call given
   * `context.correlationId`) so that every token request MSAL sends on its behalf honours
   * `context.signal` and `context.timeoutMs`; concurrent calls each keep their own.
   *
   * Requests are matched by the `correlationId` MSAL puts in their options, not by
   * `AsyncLocalStorage`: on Node 20 that turns on async-hook promise tracking for the whole
   * process, so every promise of the user's application would cost memory and CPU merely
   * because a credential exists. MSAL sends no correlation id with its metadata GETs (the
   * OpenID configuration, instance discovery: msal-common's `Authority` passes `{}`), so
   * those run with the client's own `timeoutMs` only; an abort still ends `run` at once,
   * and the GET finishes in the background (its result fills MSAL's metadata cache).
   * Rejects without calling `fn` if another pending call uses the same correlation id.
   *
   * @example
   * ```ts
   * const correlationId = crypto.randomUUID();
   * const result = await networkClient.run({ correlationId, signal }, () =>
   *   app.acquireTokenByClientCredential({ scopes, correlationId }),
   * );
   * ```
   */
  run<T>(context: RequestContext, fn: () => Promise<T>): Promise<T>;
  /** Destroys the agent's sockets, idle and active; later requests open new ones. */
  close(): void;
}

const defaultMaxResponseBytes = 1_048_576;
// Idle sockets are closed well before servers usually drop them (the emulator keeps 65 s,
// and Node also honours a server's `Keep-Alive: timeout=` hint), to avoid reusing a socket
// the server already closed.
const idleSocketTimeoutMs = 30_000;

/**
 * Creates an MSAL `INetworkModule` that trusts `options.ca` in addition to the usual roots.
 *
 * It returns what msal-node 7's own fetch-based `HttpClient` returns: `{ status, headers,
 * body }` with lower-cased header names and the body parsed as JSON for every status; it
 * rejects with an MSAL `AuthError` whose `errorCode` is `network_error` when no response
 * arrives (including timeouts, `"Request timeout"`, and aborts, `"Request aborted"`, with the
 * signal's reason as `cause`), and with an `AuthError` whose `errorCode` is
 * `token_parsing_error`, carrying `httpStatus` and `responseHeaders`, when the body is not JSON.
 *
 * @example
 * ```ts
 * import { ConfidentialClientApplication } from "@azure/msal-node";
 * const networkClient = createNetworkClient({ ca: emulator.caCertificate });
 * const app = new ConfidentialClientApplication({
 *   auth: { clientId, clientSecret, authority: `${emulator.authorityHost}/${tenant}`,
 *           knownAuthorities: [new URL(emulator.authorityHost).host] },
 *   system: { networkClient },
 * });
 * const correlationId = crypto.randomUUID();
 * const result = await networkClient.run({ correlationId, signal }, () =>
 *   app.acquireTokenByClientCredential({
 *     scopes: ["https://storage.azure.com/.default"],
 *     correlationId,
 *   }),
 * );
 * networkClient.close();
 * ```
 */
export function createNetworkClient(options: NetworkClientOptions = {}): NetworkClient {
  const extraCa = typeof options.ca === "string" ? [options.ca] : [...(options.ca ?? [])];
  const agent = new Agent({
    keepAlive: true,
    timeout: idleSocketTimeoutMs,
    // A trust store replaces Node's default one, so the defaults are listed again. It is
    // built once, as a secure context: given `ca` itself, the agent would concatenate every
    // certificate (Node's 140-odd roots) into its pool name on each request (`Agent.getName`
    // in node:https, 29% of CPU when filling keys) and parse them again for each new socket.
    ...(extraCa.length > 0
      ? { secureContext: createSecureContext({ ca: [...defaultCertificates(), ...extraCa] }) }
      : {}),
  });
  const maxResponseBytes = options.maxResponseBytes ?? defaultMaxResponseBytes;
  const startTimer = timerOn(options.scheduler);
  // Contexts of the pending `run` calls, by correlation id; each entry lives while its
  // callback runs, so the map holds only what is in flight.
  const contexts = new Map<string, RequestContext>();
  // Why a metadata GET failed, for each call pending when it did: MSAL turns a failed GET of
  // the OpenID configuration into `endpoints_resolution_error` and drops the cause
  // (msal-common `Authority.getEndpointMetadataFromNetwork` catches it and returns null), so
  // `run` hands the cause back on that error. A certificate the client does not trust then
  // reads as what it is, not as an unreachable authority.
  const getFailures = new Map<string, unknown>();

  const send = async <T>(
    method: "GET" | "POST",
    url: string,
    requestOptions: NetworkRequestOptions | undefined,
    msalTimeoutMs: number | undefined,
  ): Promise<NetworkResponse<T>> => {
    const correlationId = requestOptions?.correlationId;
    const context = correlationId ? contexts.get(correlationId) : undefined;
    const timeoutMs = msalTimeoutMs || context?.timeoutMs || options.timeoutMs;
    const once = (): Promise<RawResponse> =>
      sendOnce(
        agent,
        method,
        url,
        requestOptions,
        timeoutMs,
        context?.signal,
        maxResponseBytes,
        startTimer,
      );
    const raw = await once()
      .catch((error: unknown) => {
        // A keep-alive socket the server closed just as it was reused fails at once; Node's
        // docs recommend retrying such a request once
        // (https://nodejs.org/api/http.html#requestreusedsocket). Only GETs are retried, as
        // fetch does: a POST may have reached the server, and a dropped token request must
        // surface as the network error it is.
        if (error instanceof StaleSocketError && method === "GET") return once();
        throw error;
      })
      .catch((error: unknown) => {
        if (method === "GET") for (const id of contexts.keys()) getFailures.set(id, error);
        throw error;
      });
    let body: T;
    try {
      body = JSON.parse(raw.text) as T;
    } catch (error) {
      // A body that is not JSON (a gateway's HTML 503 page, a truncated answer) still came
      // with an HTTP status and headers: the error carries them, so the credential can
      // classify a 503 as transient and read its `Retry-After`. msal-node's own HttpClient
      // throws a bare `token_parsing_error` here and loses the status.
      throw httpError(
        ClientAuthErrorCodes.tokenParsingError,
        `Failed to parse response (HTTP ${raw.status}): ${error instanceof Error ? error.message : "unknown"}`,
        raw.status,
        raw.headers,
      );
    }
    return { status: raw.status, headers: raw.headers, body };
  };

  return {
    sendGetRequestAsync: <T>(url: string, opts?: NetworkRequestOptions, timeout?: number) =>
      send<T>("GET", url, opts, timeout),
    sendPostRequestAsync: <T>(url: string, opts?: NetworkRequestOptions) =>
      send<T>("POST", url, opts, undefined),
    run: (context, fn) => run(contexts, getFailures, context, fn),
    close: () => agent.destroy(),
  };
}

function run<T>(
  contexts: Map<string, RequestContext>,
  getFailures: Map<string, unknown>,
  context: RequestContext,
  fn: () => Promise<T>,
): Promise<T> {
  const { correlationId, signal } = context;
  if (contexts.has(correlationId)) {
    return Promise.reject(
      new Error(
        `NetworkClient.run: the correlation id ${correlationId} is already used by a pending call; give each call its own (crypto.randomUUID()).`,
      ),
    );
  }
  // An aborted call sends nothing, not even MSAL's metadata GET.
  if (signal?.aborted) return Promise.reject(abortedError(signal));
  contexts.set(correlationId, context);
  // The entry stays until `fn` settles, even after an abort ended `run`: a token POST that
  // MSAL sends once a slow metadata GET completes then still sees the aborted signal and is
  // never sent.
  const settled = (async () => fn())()
    .catch((error: unknown) => {
      const cause = getFailures.get(correlationId);
      if (
        cause !== undefined &&
        error instanceof AuthError &&
        error.errorCode === ClientAuthErrorCodes.endpointResolutionError &&
        error.cause === undefined
      ) {
        Object.defineProperty(error, "cause", { value: cause, configurable: true });
      }
      throw error;
    })
    .finally(() => {
      contexts.delete(correlationId);
      getFailures.delete(correlationId);
    });
  if (signal === undefined) return settled;
  return new Promise<T>((resolve, reject) => {
    // After an abort, `fn`'s own outcome (usually its destroyed request's rejection) is
    // still handled here, and ignored: the promise is already settled.
    const onAbort = (): void => reject(abortedError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    void settled.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
}

class StaleSocketError extends Error {}

/** Starts a one-shot timer; returns its cancel function. */
type StartTimer = (ms: number, fire: () => void) => () => void;

function timerOn(scheduler: SchedulerLike | undefined): StartTimer {
  if (scheduler !== undefined) {
    return (ms, fire) => {
      const action = scheduler.schedule(fire, ms);
      return () => action.unsubscribe();
    };
  }
  return (ms, fire) => {
    const timer = setTimeout(fire, ms);
    // A pending timeout must not keep a script alive that has nothing else to do.
    timer.unref();
    return () => clearTimeout(timer);
  };
}

function sendOnce(
  agent: Agent,
  method: "GET" | "POST",
  url: string,
  requestOptions: NetworkRequestOptions | undefined,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  maxResponseBytes: number,
  startTimer: StartTimer,
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedError(signal));
      return;
    }
    const target = new URL(url);
    if (target.protocol !== "https:") {
      reject(
        networkError(
          `Network request failed: only https: URLs are allowed, got ${target.protocol}`,
        ),
      );
      return;
    }
    const body = method === "POST" ? Buffer.from(requestOptions?.body ?? "", "utf8") : undefined;
    const headers: Record<string, string> = { ...(requestOptions?.headers ?? {}) };
    if (body !== undefined) headers["content-length"] = String(body.byteLength);

    let settled = false;
    let cancelTimer: (() => void) | undefined;
    const finish = (outcome: { value: RawResponse } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      cancelTimer?.();
      signal?.removeEventListener("abort", onAbort);
      if ("error" in outcome) reject(outcome.error);
      else resolve(outcome.value);
    };

    const req = httpsRequest(target, { method, headers, agent });
    const onAbort = (): void => {
      finish({ error: abortedError(signal) });
      req.destroy();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined && timeoutMs > 0) {
      cancelTimer = startTimer(timeoutMs, () => {
        finish({ error: networkError("Request timeout") });
        req.destroy();
      });
    }
    req.on("timeout", () => {
      // The agent's idle timeout also applies to active sockets; only our own timer or the
      // caller's signal may end an active request.
    });
    req.on("error", (error) => {
      if (req.reusedSocket && "code" in error && error.code === "ECONNRESET" && !settled) {
        settled = true;
        cancelTimer?.();
        signal?.removeEventListener("abort", onAbort);
        reject(
          method === "GET"
            ? new StaleSocketError(error.message)
            : networkError(`Network request failed: ${error.message}`, error),
        );
        return;
      }
      finish({ error: networkError(`Network request failed: ${error.message}`, error) });
    });
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > maxResponseBytes) {
          finish({
            error: networkError(
              `Network request failed: the response is larger than ${maxResponseBytes} bytes`,
            ),
          });
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", (error) => {
        finish({ error: networkError(`Network request failed: ${error.message}`, error) });
      });
      res.on("aborted", () => {
        finish({ error: networkError("Network request failed: the response was cut short") });
      });
      res.on("end", () => {
        finish({
          value: {
            status: res.statusCode ?? 0,
            headers: headerDictionary(res),
            text: Buffer.concat(chunks).toString("utf8"),
          },
        });
      });
    });
    req.end(body);
  });
}

/** Lower-cased names, repeated headers joined with ", " (what fetch's `Headers` yields). */
function headerDictionary(res: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

function networkError(message: string, cause?: unknown): AuthError {
  const error = new AuthError(ClientAuthErrorCodes.networkError, "", message);
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, enumerable: false, configurable: true });
  }
  return error;
}

/**
 * An MSAL `AuthError` that also carries the HTTP status and headers of the response, the
 * properties msal-common's `NetworkError` has. msal-common's `sendPostRequest` rethrows any
 * `AuthError` from the network module unchanged (it unwraps only its own `NetworkError`),
 * so the credential's recording client and error mapper see them. It is built from
 * msal-node's exports rather than msal-common's `createNetworkError`: msal-common is not our
 * dependency, and a second copy of it would break `instanceof` against msal-node's classes.
 * The headers are non-enumerable, as raw responses are everywhere in rx-identity.
 */
function httpError(
  code: string,
  message: string,
  httpStatus: number,
  responseHeaders: Record<string, string>,
): AuthError & { readonly httpStatus: number; readonly responseHeaders: Record<string, string> } {
  const error = new AuthError(code, "", message);
  Object.defineProperty(error, "httpStatus", { value: httpStatus, enumerable: true });
  Object.defineProperty(error, "responseHeaders", { value: responseHeaders, enumerable: false });
  return error as AuthError & {
    readonly httpStatus: number;
    readonly responseHeaders: Record<string, string>;
  };
}

function abortedError(signal: AbortSignal | undefined): AuthError {
  return networkError("Request aborted", signal?.reason);
}

let cachedDefaults: readonly string[] | undefined;

/** Node's bundled roots plus `NODE_EXTRA_CA_CERTS`, which Node reads once at start. */
function defaultCertificates(): readonly string[] {
  if (cachedDefaults !== undefined) return cachedDefaults;
  const certificates = [...rootCertificates];
  const extraFile = process.env["NODE_EXTRA_CA_CERTS"];
  if (extraFile) {
    try {
      certificates.push(readFileSync(extraFile, "utf8"));
    } catch {
      // Node itself only warns when the file is unreadable; so do we, silently.
    }
  }
  cachedDefaults = certificates;
  return certificates;
}
