/**
 * HTTPS servers on loopback whose certificate a client rejects, one per way a certificate
 * goes wrong in practice: self-signed and not trusted (the emulator's CA not given), issued
 * by an unknown authority, expired, and issued for another host name. Each counts the TCP
 * connections it gets, so a test can tell a failure that was retried from one that was not.
 */
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { generate, type CertificateExtension } from "selfsigned";

/** One way a certificate is rejected. */
export interface CertificateCase {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
  /** PEM the client is told to trust (NODE_EXTRA_CA_CERTS), or none. */
  readonly trust?: string;
  /** Node's verification code for it. */
  readonly code: string;
}

const day = 86_400_000;
const loopbackNames: CertificateExtension = {
  name: "subjectAltName",
  altNames: [
    { type: 7, ip: "127.0.0.1" },
    { type: 2, value: "localhost" },
  ],
};

async function certificate(options: {
  notBefore: number;
  notAfter: number;
  altNames?: CertificateExtension;
  ca?: { key: string; cert: string };
  isCa?: boolean;
  commonName?: string;
}): Promise<{ cert: string; key: string }> {
  const pems = await generate(
    [{ name: "commonName", value: options.commonName ?? "rx-identity test server" }],
    {
      keySize: 2048,
      algorithm: "sha256",
      notBeforeDate: new Date(options.notBefore),
      notAfterDate: new Date(options.notAfter),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      extensions: [
        { name: "basicConstraints", cA: options.isCa === true, critical: true },
        {
          name: "keyUsage",
          digitalSignature: true,
          keyEncipherment: true,
          keyCertSign: options.isCa === true,
        },
        ...(options.altNames === undefined ? [] : [options.altNames]),
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

/** The four cases, generated now (about a second of key generation). */
export async function certificateCases(): Promise<CertificateCase[]> {
  const now = Date.now();
  const valid = { notBefore: now - day, notAfter: now + 7 * day };
  const [selfSigned, authority, expired, otherHost] = await Promise.all([
    certificate({ ...valid, altNames: loopbackNames, isCa: true }),
    certificate({ ...valid, isCa: true, commonName: "rx-identity test authority" }),
    certificate({
      notBefore: now - 30 * day,
      notAfter: now - day,
      altNames: loopbackNames,
      isCa: true,
    }),
    certificate({
      ...valid,
      isCa: true,
      altNames: { name: "subjectAltName", altNames: [{ type: 2, value: "login.example.invalid" }] },
    }),
  ]);
  const issued = await certificate({ ...valid, altNames: loopbackNames, ca: authority });
  return [
    {
      name: "self-signed certificate, not trusted",
      ...selfSigned,
      code: "DEPTH_ZERO_SELF_SIGNED_CERT",
    },
    {
      name: "certificate from an unknown issuer",
      ...issued,
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    },
    { name: "expired certificate", ...expired, trust: expired.cert, code: "CERT_HAS_EXPIRED" },
    {
      name: "certificate for another host name",
      ...otherHost,
      trust: otherHost.cert,
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    },
  ];
}

/** A server presenting one case's certificate. */
export interface CertificateServer {
  readonly authorityHost: string;
  /** TCP connections accepted so far. */
  readonly connections: number;
  stop(): Promise<void>;
}

export async function serveCertificate(tls: {
  cert: string;
  key: string;
}): Promise<CertificateServer> {
  let connections = 0;
  const server = createServer({ cert: tls.cert, key: tls.key }, (_req, res) => {
    res.writeHead(500).end();
  });
  server.on("connection", () => (connections += 1));
  // A client that rejects the certificate hangs up during the handshake: expected.
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    authorityHost: `https://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
