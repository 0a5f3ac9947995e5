import { defineConfig } from "tsup";

export default defineConfig([
  {
    // The library: ESM and CJS with declarations for both, one file per entry point.
    entry: {
      index: "src/index.ts",
      "testing/index": "src/testing/index.ts",
      redis: "src/redis.ts",
    },
    format: ["esm", "cjs"],
    dts: true,
    clean: false,
    sourcemap: true,
    target: "node20",
    tsconfig: "tsconfig.build.json",
    splitting: false,
  },
  {
    // The `rx-identity` command: an ESM executable, no declarations.
    entry: { "cli/bin": "src/cli/bin.ts" },
    format: ["esm"],
    dts: false,
    sourcemap: true,
    target: "node20",
    tsconfig: "tsconfig.build.json",
    splitting: false,
  },
]);
