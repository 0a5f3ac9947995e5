/**
 * `rx-identity/testing`: tools for testing code that uses rx-identity, chiefly a local
 * Entra ID emulator (a real HTTPS server on loopback) that `@azure/msal-node` and
 * `ClientSecretCredential` talk to as they would to Entra ID.
 *
 * @example
 * ```ts
 * import { startEntraEmulator } from "rx-identity/testing";
 * await using emulator = await startEntraEmulator();
 * emulator.registerApplication({ clientId: "app", clientSecret: "secret" });
 * ```
 */
export { startEntraEmulator } from "./emulator/entra-emulator.js";
export { entraErrors } from "./emulator/entra-errors.js";
export type { EntraError, EntraErrorBody } from "./emulator/entra-errors.js";
export type { ClientSecretOptions } from "./emulator/client-secrets.js";
export type {
  ApplicationRegistration,
  EntraEmulator,
  EntraEmulatorOptions,
  FaultHandle,
  FaultMatch,
  FaultSpec,
  ManagedIdentityOptions,
  MintTokenOptions,
  RequestFilter,
  TokenRequestRecord,
} from "./emulator/types.js";
export { createTestCredential } from "./fake-credential.js";
export type {
  TestCredential,
  TestCredentialOptions,
  TestTokenStreamOptions,
} from "./fake-credential.js";
export { MAX_REQUESTS_PER_INSTANT } from "./fake-token-source.js";
export type { FaultPhase, TestFailure, TestTokenRequest } from "./fake-token-source.js";
export { decodeTestToken } from "./test-token.js";
export type { TestTokenClaims } from "./test-token.js";
export { arbitraries } from "./arbitraries.js";
export type {
  FastCheckModule,
  FaultScheduleConstraints,
  LifetimeConstraints,
  RxIdentityArbitraries,
  TimelineConstraints,
  TimelineStep,
  TokenLifetime,
} from "./arbitraries.js";
