/**
 * The store's own error. `src/stores` imports nothing of ours at run time, so it cannot
 * extend `RxIdentityError`; it follows the same pattern (literal `code`, brand + `name` guard).
 */

const brand = Symbol.for("rx-identity.store-error");

/**
 * The store's backend cannot be reached in time (Redis down, restarting or too slow). The
 * caller should acquire on its own and try the store again later; the store reconnects by
 * itself.
 *
 * @example
 * ```ts
 * try { entry = await store.read(key); }
 * catch (err) { if (!isTokenStoreUnavailableError(err)) throw err; entry = undefined; }
 * ```
 */
export class TokenStoreUnavailableError extends Error {
  override readonly name = "TokenStoreUnavailableError";
  readonly code = "ERR_STORE_UNAVAILABLE" as const;
  declare readonly [brand]: true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, brand, { value: true, enumerable: false });
  }
}

/**
 * Whether `value` is a {@link TokenStoreUnavailableError} (works across duplicated package copies).
 *
 * @example
 * ```ts
 * if (isTokenStoreUnavailableError(err)) logger.info("store unavailable, acquiring locally");
 * ```
 */
export function isTokenStoreUnavailableError(value: unknown): value is TokenStoreUnavailableError {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { [brand]?: unknown })[brand] === true &&
    (value as { name?: unknown }).name === "TokenStoreUnavailableError"
  );
}
