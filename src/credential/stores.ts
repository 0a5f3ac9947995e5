import { defer, EMPTY, from, switchMap, type Observable } from "rxjs";
import { createFileTokenStore, storeKeyOf, type TokenStore } from "../stores/index.js";
import type { SharedTokenCache, SharedTokenLease } from "../streams/index.js";
import type { CredentialKey } from "./key.js";
import type { SecretSnapshot, SecretSource } from "./secret-source.js";

/**
 * The bridge between the credential and `src/stores`: turns a {@link TokenStore} (given, or
 * the persistent file cache built from `tokenCachePersistenceOptions`) into the engine's
 * `SharedTokenCache`, keyed by `storeKeyOf`.
 */

/** What identifies the credential's tokens in a store, besides each key's own fields. */
export interface SharedCacheIdentity {
  readonly authorityHost: string;
  readonly clientId: string;
}

/** A lease that is always granted: stores without leases let every acquisition proceed. */
const noLease: SharedTokenLease = { release: () => Promise.resolve() };

/**
 * The engine's view of `store` (which may still be opening: every call waits for it, and a
 * store that failed to open rejects each call, so the engine acquires on its own). Claims
 * keys stay out of the store: they are short-lived by design.
 *
 * @example
 * ```ts
 * const shared = sharedCacheOf(createRedisTokenStore({ url, clientSecret, credentialId }), {
 *   authorityHost, clientId,
 * });
 * createTokenRegistry({ acquire, classify, sharedCache: shared });
 * ```
 */
export function sharedCacheOf(
  store: TokenStore | Promise<TokenStore>,
  identity: SharedCacheIdentity,
): SharedTokenCache<CredentialKey> {
  const opened = Promise.resolve(store);
  // A store that fails to open is reported by each call; never as an unhandled rejection.
  opened.catch(() => undefined);
  // Only a store known at once can say whether it has leases; an opening one is asked later.
  const known = store instanceof Promise ? undefined : store;
  return {
    keyOf: (key) =>
      key.shortLived
        ? undefined
        : storeKeyOf({
            authorityHost: identity.authorityHost,
            clientId: identity.clientId,
            tenantId: key.tenant,
            scopes: key.scopes,
            claims: key.claims,
            enableCae: key.enableCae,
          }),
    read: async (key) => (await opened).read(key),
    write: async (key, entry) => (await opened).write(key, entry),
    ...(known !== undefined && known.lease === undefined
      ? {}
      : {
          lease: async (key: string, ttlMs: number): Promise<SharedTokenLease | null> => {
            const resolved = await opened;
            return resolved.lease === undefined ? noLease : resolved.lease(key, ttlMs);
          },
        }),
    ...(known !== undefined && known.watch === undefined
      ? {}
      : {
          watch: (): Observable<{
            readonly key: string;
            readonly entry: { token: string; expiresOnTimestamp: number } | undefined;
          }> =>
            defer(() => from(opened)).pipe(switchMap((resolved) => resolved.watch?.() ?? EMPTY)),
        }),
  };
}

/**
 * Opens the persistent file cache of `tokenCachePersistenceOptions` (sealed with the client
 * secret, and with each rotated one: entries sealed under a replaced secret stay readable
 * while they are valid; `name` picks the files `<name>.nocae` and `<name>.cae`).
 *
 * @example
 * ```ts
 * const store = openPersistentCache({ secrets, name: "my-service", now: Date.now });
 * ```
 */
export function openPersistentCache(options: {
  readonly secrets: SecretSource;
  readonly name?: string | undefined;
  readonly now: () => number;
}): Promise<TokenStore> {
  const { secrets } = options;
  return createFileTokenStore({
    clientSecret: secrets.values$ ?? (secrets.current() as SecretSnapshot).reveal(),
    name: options.name,
    now: options.now,
  });
}
