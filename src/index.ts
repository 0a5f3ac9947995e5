export {
  AbortError,
  AuthenticationError,
  ClaimsChallengeError,
  CredentialUnavailableError,
  InvalidArgumentError,
  RxIdentityError,
  isAbortError,
  isAuthenticationError,
  isClaimsChallengeError,
  isCredentialUnavailableError,
  isInvalidArgumentError,
  isRxIdentityError,
} from "./errors/index.js";
export type {
  AuthenticationErrorOptions,
  ErrorResponse,
  RxIdentityErrorCode,
  RxIdentityErrorUnion,
} from "./errors/index.js";

export {
  ClientSecretCredential,
  DEFAULT_AUTHORITY_HOST,
  MAX_CLAIMS_BYTES,
  METRICS,
  TOKEN_REQUEST_SPAN,
  summarizeFailure,
  parseClaimsChallenge,
  parseWwwAuthenticate,
  reactiveCredential,
  retryOnClaimsChallenge,
  secretFromFile,
} from "./credential/index.js";
export type {
  AuthChallenge,
  ClientSecretCredentialOptions,
  CredentialEvent,
  CredentialEventKey,
  CredentialEventType,
  CredentialLoggingOptions,
  CredentialStatus,
  CredentialTelemetryOptions,
  FailureSummary,
  TokenStatus,
  ReactiveCredential,
  ReactiveCredentialOptions,
  RetryOnClaimsChallengeOptions,
  SecretFromFileOptions,
  TokenCachePersistenceOptions,
  TokenStreamOptions,
} from "./credential/index.js";

export {
  dropStale,
  refreshBeforeExpiry,
  retryWithBackoff,
  rotateOnNewValue,
  timerAt,
  unrefScheduler,
} from "./operators/index.js";
export type {
  DropStaleOptions,
  RefreshBeforeExpiryOptions,
  RetryDecision,
  RetryWithBackoffOptions,
} from "./operators/index.js";

export { DEFAULT_REFRESH_POLICY, createTokenRegistry } from "./streams/index.js";
export type {
  Acquire,
  AcquiredToken,
  Classify,
  CreateTokenRegistryOptions,
  FailureClass,
  KeyFailure,
  KeyStatus,
  RefreshPolicyOptions,
  RegistryEvent,
  TokenKey,
  TokenRegistry,
} from "./streams/index.js";

export {
  DEFAULT_CACHE_NAME,
  TokenStoreUnavailableError,
  createFileTokenStore,
  createMemoryTokenStore,
  credentialIdOf,
  defaultCacheDirectory,
  isTokenStoreUnavailableError,
  storeKeyOf,
} from "./stores/index.js";
export type {
  FileTokenStoreOptions,
  MemoryTokenStoreOptions,
  StoreKeyFields,
  StoreLogger,
  TokenLease,
  TokenStore,
  TokenStoreEntry,
  TokenStoreUpdate,
} from "./stores/index.js";
export { DEFAULT_LEASE_TTL_MS } from "./streams/index.js";
export type { SharedTokenCache, SharedTokenEntry, SharedTokenLease } from "./streams/index.js";

export { authorizedFetch } from "./adapters/authorized-fetch.js";
export type { AuthorizedFetchOptions, FetchLike } from "./adapters/authorized-fetch.js";
