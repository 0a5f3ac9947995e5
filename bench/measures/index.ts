/** Every measure of the bench, in the order of {@link measureIds}. */
import type { Measure } from "../measure.js";
import { cacheHit } from "./cache-hit.js";
import { cacheHitOtel } from "./cache-hit-otel.js";
import { firstToken } from "./first-token.js";
import { forgottenKeys } from "./forgotten-keys.js";
import { fleet } from "./fleet.js";
import { keyScaling } from "./key-scaling.js";
import { memory } from "./memory.js";
import { refreshUnderLoad } from "./refresh-under-load.js";
import { coldStampede } from "./stampede.js";
import { wrappedPeer } from "./wrapped.js";

export const measures: readonly Measure[] = [
  cacheHit,
  cacheHitOtel,
  coldStampede,
  wrappedPeer,
  keyScaling,
  memory,
  forgottenKeys,
  firstToken,
  refreshUnderLoad,
  fleet,
];
