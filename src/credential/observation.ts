/**
 * What a credential tells about itself: its `events$` (the engine's events in the
 * credential's terms), the `@azure/logger` lines written by a subscriber of them, the
 * OpenTelemetry spans and metrics, and `status()`. One source: every reader subscribes to
 * the same events; none reads the engine a second way.
 */
import { Subject, type Observable, type SchedulerLike } from "rxjs";
import type { AcquiredToken, KeyStatus, RegistryEvent } from "../streams/types.js";
import {
  secretRotatedEvent,
  toCredentialEvent,
  toTokenStatus,
  type CredentialEvent,
  type CredentialStatus,
} from "./events.js";
import type { CredentialKey } from "./key.js";
import { logCredentialEvent } from "./logger.js";
import type { SecretSnapshot } from "./secret-source.js";
import { instrumentCredential } from "./telemetry.js";

/** Options of {@link createCredentialObservation}. */
export interface CredentialObservationOptions {
  /** The credential's clock: event and status times (epoch ms in real time). */
  readonly scheduler: SchedulerLike;
  /**
   * For the spans' `server.address` and `url.full`.
   * @default undefined (spans without them, for a wrapped credential)
   */
  readonly authorityHost?: string | undefined;
  /** Whether the credential has a token store (`status().tokenStore` is `"none"` without). */
  readonly hasStore: boolean;
  /** The engine's key states, read by `status()` and by the gauges when a collector asks. */
  readonly keys: () => readonly KeyStatus<CredentialKey>[];
  /** @default false */
  readonly scopeAttribute?: boolean | undefined;
}

/** The observation side of one credential. */
export interface CredentialObservation {
  /** Every event, hot; completes on `close()`. */
  readonly events$: Observable<CredentialEvent>;
  /** The registry's `onEvent`. */
  readonly onRegistryEvent: (event: RegistryEvent<CredentialKey>) => void;
  /** The secret source's `onRotate`: a `secret-rotated` event (fingerprints only). */
  readonly onSecretRotated: (next: SecretSnapshot, previous: SecretSnapshot) => void;
  /** Wraps one token request to Entra ID in a span parented on `callerContext`. */
  readonly traceRequest: (
    key: CredentialKey,
    callerContext: unknown,
    request: () => Promise<AcquiredToken>,
  ) => Promise<AcquiredToken>;
  /** The credential's `status()`. */
  readonly status: (closed: boolean) => CredentialStatus;
  /** Completes `events$` and stops the gauges. */
  readonly close: () => void;
}

/**
 * The events, log, telemetry and status of one credential. The log subscribes first, so a
 * line is written before any user subscriber runs.
 *
 * @example
 * ```ts
 * const observation = createCredentialObservation({ scheduler, authorityHost, hasStore: false,
 *   keys: () => registry.status() });
 * createTokenRegistry({ acquire, classify, onEvent: observation.onRegistryEvent });
 * ```
 */
export function createCredentialObservation(
  options: CredentialObservationOptions,
): CredentialObservation {
  const { scheduler, keys } = options;
  const events = new Subject<CredentialEvent>();
  let tokenStore: CredentialStatus["tokenStore"] = options.hasStore ? "available" : "none";
  // The log is one reader of the events: the same source as every other reader.
  events.subscribe(logCredentialEvent);
  const telemetry = instrumentCredential(
    events,
    { now: () => scheduler.now(), keys, store: () => tokenStore },
    { authorityHost: options.authorityHost, scopeAttribute: options.scopeAttribute },
  );
  return {
    events$: events.asObservable(),
    onRegistryEvent: (event) => {
      if (event.type === "shared-cache-unavailable") tokenStore = "unavailable";
      if (event.type === "shared-cache-available") tokenStore = "available";
      events.next(toCredentialEvent(event, scheduler.now()));
    },
    onSecretRotated: (next, previous) =>
      events.next(secretRotatedEvent(next, previous, scheduler.now())),
    traceRequest: telemetry.traceRequest,
    status: (closed) => ({
      at: scheduler.now(),
      closed,
      tokenStore,
      keys: closed ? [] : keys().map(toTokenStatus),
    }),
    close: () => {
      telemetry.close();
      events.complete();
    },
  };
}
