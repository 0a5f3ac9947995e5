import { defineConfig } from "vitest/config";

/**
 * The soak: only `npm run test:soak` uses this configuration
 * (`SOAK=1 FC_NUM_RUNS=10000 vitest run --config test/reliability/vitest.soak.config.ts`);
 * the default `vitest run` never matches `*.soak.ts`.
 */
export default defineConfig({
  test: {
    include: ["test/reliability/**/*.soak.ts"],
    testTimeout: 15 * 60_000,
  },
});
