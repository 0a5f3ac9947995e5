export { ClientSecretCredential, DEFAULT_AUTHORITY_HOST } from "./client-secret-credential.js";
export type {
  ClientSecretCredentialOptions,
  CredentialLoggingOptions,
  CredentialTelemetryOptions,
  TokenCachePersistenceOptions,
  TokenStreamOptions,
} from "./client-secret-credential.js";
export {
  parseClaimsChallenge,
  parseWwwAuthenticate,
  retryOnClaimsChallenge,
} from "./claims-challenge.js";
export type { AuthChallenge, RetryOnClaimsChallengeOptions } from "./claims-challenge.js";
export { MAX_CLAIMS_BYTES } from "./validation.js";
export { secretFromFile } from "./secret-from-file.js";
export type { SecretFromFileOptions } from "./secret-from-file.js";
export { summarizeFailure } from "./events.js";
export type {
  CredentialEvent,
  CredentialEventKey,
  CredentialEventType,
  CredentialStatus,
  FailureSummary,
  TokenStatus,
} from "./events.js";
export { METRICS, TOKEN_REQUEST_SPAN } from "./telemetry.js";
export { reactiveCredential } from "./reactive-credential.js";
export type { ReactiveCredential, ReactiveCredentialOptions } from "./reactive-credential.js";
