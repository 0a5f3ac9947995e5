/** The certificate the bench's emulator serves, and the CA file its child process trusts. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

/** A loopback server certificate (its own CA), its key, and the CA file that trusts it. */
export interface BenchCertificate {
  readonly cert: string;
  readonly key: string;
  /** A PEM file holding `cert`, for `NODE_EXTRA_CA_CERTS`. */
  readonly caFile: string;
  /** Removes the file and its private directory. */
  remove(): Promise<void>;
}

/**
 * Generates a self-signed certificate for `127.0.0.1` and writes it to a new private
 * temporary directory. P-256 rather than RSA: handshakes are cheaper, for every library alike.
 *
 * @example
 * ```ts
 * const certificate = await createBenchCertificate();
 * spawn(process.execPath, [child], { env: { NODE_EXTRA_CA_CERTS: certificate.caFile } });
 * await certificate.remove();
 * ```
 */
export async function createBenchCertificate(): Promise<BenchCertificate> {
  const now = Date.now();
  const pems = await generate([{ name: "commonName", value: "rx-identity bench emulator" }], {
    keyType: "ec",
    algorithm: "sha256",
    notBeforeDate: new Date(now - 86_400_000),
    notAfterDate: new Date(now + 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  const directory = await mkdtemp(join(tmpdir(), "rx-identity-bench-"));
  const caFile = join(directory, "ca.pem");
  await writeFile(caFile, pems.cert, { mode: 0o600 });
  return {
    cert: pems.cert,
    key: pems.private,
    caFile,
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}
