/** Every measure of the bench, in the order of {@link measureIds}. */
import type { Measure } from "../measure.js";
import { cacheHit } from "./cache-hit.js";
import { coldStampede } from "./stampede.js";

export const measures: readonly Measure[] = [cacheHit, coldStampede];
