import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (path: string): string => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests, examples and README snippets import the package by its name, as users do.
    alias: [
      { find: /^rx-identity\/testing$/, replacement: src("testing/index.ts") },
      { find: /^rx-identity\/redis$/, replacement: src("redis.ts") },
      { find: /^rx-identity$/, replacement: src("index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Real-process tests run the build in dist/: rebuild it first when sources are newer.
    globalSetup: ["test/support/fresh-dist.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
