export {
  DEFAULT_REFRESH_POLICY,
  baseRefreshTime,
  forcedWindow,
  maxJitter,
  refreshTime,
  resolveRefreshPolicy,
  retryDelay,
} from "./refresh-policy.js";
export type { RefreshPolicyOptions } from "./refresh-policy.js";
export {
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_MAX_SHORT_LIVED_KEYS,
  createTokenRegistry,
} from "./token-registry.js";
export type { CreateTokenRegistryOptions } from "./token-registry.js";
export { createUnrefScheduler, unrefScheduler } from "../operators/index.js";
export type {
  Acquire,
  AcquiredToken,
  Classify,
  FailureClass,
  KeyFailure,
  KeyStatus,
  RegistryEvent,
  SharedTokenCache,
  SharedTokenEntry,
  SharedTokenLease,
  TokenKey,
  TokenRegistry,
  TokenRegistryOptions,
} from "./types.js";
