export { ClientSecretCredential, DEFAULT_AUTHORITY_HOST } from "./client-secret-credential.js";
export type {
  ClientSecretCredentialOptions,
  CredentialLoggingOptions,
  TokenCachePersistenceOptions,
  TokenStreamOptions,
} from "./client-secret-credential.js";
export { MAX_CLAIMS_BYTES } from "./validation.js";
