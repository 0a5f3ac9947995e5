/**
 * The measures, in the order they run. Kept apart from the measures themselves so the
 * parent process can validate `--only` without loading any library.
 */
export const measureIds: readonly string[] = [
  "cache-hit",
  "cache-hit-otel",
  "stampede",
  "wrapped",
  "key-scaling",
  "memory",
  "forgotten-keys",
  "first-token",
  "refresh-under-load",
  "fleet",
];
