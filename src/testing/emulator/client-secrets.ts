import { createHash, timingSafeEqual } from "node:crypto";

/**
 * The client secrets of one emulated application. Entra ID lets an app registration hold
 * several secrets at once (that is how a rotation is done without downtime: add the new
 * one, roll it out, remove the old one), each with its own expiry. Secrets are kept as
 * SHA-256 digests only, so none can leak through `util.inspect` of the emulator.
 */

/** What a presented secret is to the application. */
export type SecretVerdict = "valid" | "expired" | "unknown";

/** Options of {@link ClientSecrets.add}. */
export interface ClientSecretOptions {
  /**
   * When the secret expires: after it, requests with it fail with 401 AADSTS7000222.
   * @default undefined (never)
   */
  readonly expiresOn?: Date | undefined;
}

interface HeldSecret {
  readonly digest: Buffer;
  expiresOn: Date | undefined;
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function validSecret(clientId: string, secret: unknown): asserts secret is string {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new TypeError(
      `Expected a client secret of application '${clientId}' to be a non-empty string`,
    );
  }
}

/**
 * The secrets of one application: added, revoked and expired while the emulator runs.
 *
 * @example
 * ```ts
 * const secrets = new ClientSecrets("my-app", "old-secret", undefined);
 * secrets.add("new-secret");
 * secrets.revoke("old-secret");
 * secrets.verdict("old-secret", Date.now()); // "unknown"
 * ```
 */
export class ClientSecrets {
  readonly #clientId: string;
  readonly #held: HeldSecret[] = [];

  constructor(clientId: string, first: string, expiresOn: Date | undefined) {
    this.#clientId = clientId;
    this.add(first, { expiresOn });
  }

  /** Adds `secret` (or sets the expiry of a secret already held). */
  add(secret: string, options: ClientSecretOptions = {}): void {
    validSecret(this.#clientId, secret);
    const held = this.#find(secret);
    if (held !== undefined) held.expiresOn = options.expiresOn;
    else this.#held.push({ digest: sha256(secret), expiresOn: options.expiresOn });
  }

  /** Removes `secret`: requests with it fail as with a wrong one (AADSTS7000215). */
  revoke(secret: string): void {
    validSecret(this.#clientId, secret);
    const held = this.#find(secret);
    if (held === undefined) {
      throw new RangeError(`Application '${this.#clientId}' holds no such client secret`);
    }
    this.#held.splice(this.#held.indexOf(held), 1);
  }

  /** Makes `secret` expire at `at`: requests with it then fail with AADSTS7000222. */
  expire(secret: string, at: Date): void {
    validSecret(this.#clientId, secret);
    const held = this.#find(secret);
    if (held === undefined) {
      throw new RangeError(`Application '${this.#clientId}' holds no such client secret`);
    }
    held.expiresOn = at;
  }

  /** How many secrets the application holds (expired ones included). */
  get size(): number {
    return this.#held.length;
  }

  /** Whether `candidate` is one of the secrets, and whether it expired at `now`. */
  verdict(candidate: string, now: number): SecretVerdict {
    const held = this.#find(candidate);
    if (held === undefined) return "unknown";
    return held.expiresOn !== undefined && held.expiresOn.getTime() <= now ? "expired" : "valid";
  }

  /** Compares every held digest in constant time, so the emulator is no timing oracle. */
  #find(candidate: string): HeldSecret | undefined {
    const digest = sha256(candidate);
    let found: HeldSecret | undefined;
    for (const held of this.#held) {
      if (timingSafeEqual(held.digest, digest)) found = held;
    }
    return found;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ClientSecrets { clientId: '${this.#clientId}', size: ${this.#held.length} }`;
  }
}
