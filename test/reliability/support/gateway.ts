/**
 * A reverse proxy in front of the emulator that plays a misbehaving gateway: it forwards
 * everything to the emulator (rewriting the emulator's address in bodies, so MSAL's issuer
 * check sees the gateway) and, when armed, answers token requests itself with a non-JSON
 * page, as Azure Front Door or a corporate proxy does during an outage.
 */
import { createServer, request, Agent } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TlsMaterial } from "../../../src/testing/emulator/certificate.js";

/** What the gateway answers instead of forwarding a token request. */
export interface GatewayFault {
  readonly status: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
  /** @default 1 */
  readonly times?: number;
  /**
   * Only token requests with this `client_id` (so concurrent tests can share one gateway).
   * @default undefined (every token request)
   */
  readonly clientId?: string;
}

export interface Gateway {
  /** `https://127.0.0.1:PORT`: use it as the credential's `authorityHost`. */
  readonly authorityHost: string;
  /** Token requests the gateway answered itself. */
  readonly answered: number;
  fail(fault: GatewayFault): void;
  /** Forwards every request again. */
  clear(): void;
  stop(): Promise<void>;
}

/** An HTML 503 page such as a gateway serves when the service behind it is down. */
export const html503 =
  "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>";

/**
 * Starts the gateway on a free loopback port, serving `tls` (the same certificate the
 * emulator was started with, so one `ca` trusts both).
 */
export async function startGateway(emulatorHost: string, tls: TlsMaterial): Promise<Gateway> {
  const agent = new Agent({ ca: tls.cert, keepAlive: false });
  const faults: { fault: GatewayFault; left: number }[] = [];
  let answered = 0;
  let self = "";

  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const clientId = new URLSearchParams(body.toString("utf8")).get("client_id");
      const armed = faults.find(
        (candidate) =>
          candidate.left > 0 &&
          (candidate.fault.clientId === undefined || candidate.fault.clientId === clientId),
      );
      if (req.method === "POST" && req.url?.includes("/oauth2/v2.0/token") && armed) {
        armed.left -= 1;
        answered += 1;
        res.writeHead(armed.fault.status, {
          "content-type": "text/html; charset=utf-8",
          ...armed.fault.headers,
        });
        res.end(armed.fault.body);
        return;
      }
      forward(req, res, body);
    });
  });

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const headers = { ...req.headers, host: emulatorHost };
    const upstream = request(
      `https://${emulatorHost}${req.url ?? "/"}`,
      { method: req.method, headers, agent },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on("data", (chunk: Buffer) => parts.push(chunk));
        answer.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8").split(emulatorHost).join(self);
          const { "content-length": _length, ...rest } = answer.headers;
          res.writeHead(answer.statusCode ?? 502, rest);
          res.end(text);
        });
      },
    );
    upstream.on("error", () => res.destroy());
    upstream.end(body);
  };

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    authorityHost: `https://${self}`,
    get answered() {
      return answered;
    },
    fail(fault) {
      faults.push({ fault, left: fault.times ?? 1 });
    },
    clear() {
      faults.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
