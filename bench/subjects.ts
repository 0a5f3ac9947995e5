/**
 * The libraries the bench compares, each built against the same emulator: ours
 * (`ClientSecretCredential` from `src/credential`), the peer (`@azure/identity`'s
 * `ClientSecretCredential`, the library users would otherwise pick) and raw
 * `@azure/msal-node` (the floor for the first token: ours is built on it).
 *
 * Trust: the child process runs with `NODE_EXTRA_CA_CERTS` pointing at the emulator's
 * certificate, so every library trusts it the same way and none needs a per-client option
 * (`@azure/identity` has none). Ours is therefore built without its `ca` option.
 */
import type { TokenCredential } from "@azure/core-auth";
import { ClientSecretCredential as PeerCredential } from "@azure/identity";
import { ConfidentialClientApplication } from "@azure/msal-node";
import { createRequire } from "node:module";
import type { SchedulerLike } from "rxjs";
import {
  ClientSecretCredential,
  reactiveCredential,
  type ReactiveCredential,
} from "../src/credential/index.js";

/** Where and as whom the libraries ask for tokens. */
export interface BenchTarget {
  /** `https://127.0.0.1:PORT`. */
  readonly authorityHost: string;
  /** `127.0.0.1:PORT`, for MSAL's `knownAuthorities`. */
  readonly host: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

const require = createRequire(import.meta.url);

function versionOf(name: string): string {
  const manifest = require(`${name}/package.json`) as { version: string };
  return manifest.version;
}

/** The peer, with its installed version, as shown in the table. */
export const PEER_NAME = `@azure/identity ${versionOf("@azure/identity")}`;

/** Raw MSAL, with its installed version, as shown in the table. */
export const RAW_MSAL_NAME = `@azure/msal-node ${versionOf("@azure/msal-node")} (raw)`;

/**
 * Our credential against `target`.
 *
 * @example
 * ```ts
 * const ours = createOurs(target);
 * await ours.getToken("https://bench.example/.default");
 * await ours.close();
 * ```
 */
export function createOurs(
  target: BenchTarget,
  options: { readonly scheduler?: SchedulerLike } = {},
): ClientSecretCredential {
  return new ClientSecretCredential(target.tenantId, target.clientId, target.clientSecret, {
    authorityHost: target.authorityHost,
    disableInstanceDiscovery: true,
    ...(options.scheduler !== undefined ? { scheduler: options.scheduler } : {}),
  });
}

/**
 * `@azure/identity`'s `ClientSecretCredential` against `target`. `disableInstanceDiscovery`
 * makes it list the authority host in MSAL's `knownAuthorities` (`getKnownAuthorities` in
 * `@azure/identity/dist/esm/msal/utils.js`); without it MSAL would ask
 * login.microsoftonline.com about 127.0.0.1 (DESIGN.md, facts about MSAL).
 *
 * @example
 * ```ts
 * const peer = createPeer(target);
 * await peer.getToken("https://bench.example/.default");
 * ```
 */
export function createPeer(target: BenchTarget): TokenCredential {
  return new PeerCredential(target.tenantId, target.clientId, target.clientSecret, {
    authorityHost: target.authorityHost,
    disableInstanceDiscovery: true,
  });
}

/**
 * `@azure/identity`'s `ClientSecretCredential` against `target`, run by our engine through
 * `reactiveCredential` (the path of a `DefaultAzureCredential` user).
 *
 * @example
 * ```ts
 * const wrapped = createWrappedPeer(target);
 * await wrapped.getToken("https://bench.example/.default");
 * await wrapped.close();
 * ```
 */
export function createWrappedPeer(target: BenchTarget): ReactiveCredential {
  return reactiveCredential(createPeer(target));
}

/**
 * A raw msal-node `ConfidentialClientApplication` against `target`, configured as the
 * emulator needs (`knownAuthorities` with host and port) and nothing else.
 *
 * @example
 * ```ts
 * const app = createRawMsal(target);
 * await app.acquireTokenByClientCredential({ scopes: ["https://bench.example/.default"] });
 * ```
 */
export function createRawMsal(target: BenchTarget): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: target.clientId,
      clientSecret: target.clientSecret,
      authority: `${target.authorityHost}/${target.tenantId}`,
      knownAuthorities: [target.host],
    },
  });
}

/**
 * A distinct, valid scope per index, so every index is its own cache key in every library.
 *
 * @example
 * ```ts
 * scopeOf("fill", 7); // "https://fill-7.bench.example/.default"
 * ```
 */
export function scopeOf(prefix: string, index: number): string {
  return `https://${prefix}-${index}.bench.example/.default`;
}
