import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

/** A TLS certificate and its key, in PEM. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
}

/**
 * Generates a self-signed server certificate for the loopback names (`127.0.0.1`, `::1`,
 * `localhost`). It is its own CA, so trusting the certificate itself (Node's `ca` option or
 * `NODE_EXTRA_CA_CERTS`) is enough.
 *
 * @example
 * ```ts
 * const { cert, key } = await generateLoopbackCertificate();
 * https.createServer({ cert, key });
 * ```
 */
export async function generateLoopbackCertificate(): Promise<TlsMaterial> {
  const now = Date.now();
  const pems = await generate([{ name: "commonName", value: "rx-identity Entra ID emulator" }], {
    keySize: 2048,
    algorithm: "sha256",
    // Back-dated a day so a client whose clock is slightly behind still accepts it.
    notBeforeDate: new Date(now - 86_400_000),
    notAfterDate: new Date(now + 7 * 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
          { type: 2, value: "localhost" },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Writes `pem` to a new private temporary directory; returns the file and a remover.
 *
 * @example
 * ```ts
 * const ca = await writeCaFile(cert);
 * spawn("node", ["app.js"], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.path } });
 * await ca.remove();
 * ```
 */
export async function writeCaFile(pem: string): Promise<{ path: string; remove(): Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), "rx-identity-emulator-"));
  const path = join(directory, "ca.pem");
  await writeFile(path, pem, { mode: 0o600 });
  return { path, remove: () => rm(directory, { recursive: true, force: true }) };
}
