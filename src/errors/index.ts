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
} from "./errors.js";
export type {
  AuthenticationErrorOptions,
  ErrorResponse,
  RxIdentityErrorCode,
  RxIdentityErrorUnion,
} from "./errors.js";
