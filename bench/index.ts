/**
 * `npm run bench [-- --quick] [-- --only=cache-hit,stampede]`: rx-identity against
 * `@azure/identity` (and raw `@azure/msal-node`) in one run, against one local Entra ID
 * emulator. Prints a table and writes `bench/results.json`.
 *
 * This parent process generates the emulator's certificate and starts the measuring child
 * (`bench/child.ts`) with `NODE_EXTRA_CA_CERTS` pointing at it: Node reads that variable only
 * at process start, and `@azure/identity` offers no per-client CA option, so this is the one
 * way both libraries trust the emulator alike. The child runs with `--expose-gc` for the
 * memory measure and between timing rounds.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createBenchCertificate } from "./certificate.js";
import { measureIds } from "./measures/ids.js";
import type { BenchMode, ChildConfig, ChildMessage, MeasureResult } from "./protocol.js";
import { assembleResults, renderTable, writeResults } from "./report.js";

interface Arguments {
  readonly mode: BenchMode;
  readonly only: readonly string[];
}

const USAGE = `usage: npm run bench [-- --quick] [-- --only=${measureIds.join(",")}]`;

function parseArguments(argv: readonly string[]): Arguments {
  let mode: BenchMode = "full";
  let only: string[] = [];
  for (const arg of argv) {
    if (arg === "--quick") mode = "quick";
    else if (arg.startsWith("--only="))
      only = arg.slice("--only=".length).split(",").filter(Boolean);
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  const unknown = only.filter((id) => !measureIds.includes(id));
  if (unknown.length > 0) throw new Error(`unknown measure ${unknown.join(", ")}\n${USAGE}`);
  return { mode, only };
}

/**
 * Generous upper bounds: a child that runs longer is stuck, not slow. The full run of
 * 2026-12-01 took 25 minutes on a quiet 2-core machine (key-scaling up to about 400 s with
 * its 300 s fill, forgotten-keys about 300 s); a quick one, 128 s. Both bounds are well over.
 */
const CHILD_TIMEOUT_MS: Record<BenchMode, number> = { quick: 300_000, full: 2_700_000 };

async function runChild(
  config: ChildConfig,
  caFile: string,
): Promise<{
  results: MeasureResult[];
  failures: { id: string; error: string }[];
}> {
  const results: MeasureResult[] = [];
  const failures: { id: string; error: string }[] = [];
  const child = spawn(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      import.meta.resolve("tsx"),
      fileURLToPath(new URL("./child.ts", import.meta.url)),
    ],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: caFile,
        RX_IDENTITY_BENCH_CONFIG: JSON.stringify(config),
      },
    },
  );
  // Whatever happens to this process, the child (and the emulator in it) goes too.
  const killChild = (): void => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.on("exit", killChild);
  const timer = setTimeout(() => {
    failures.push({ id: "child", error: `timed out after ${CHILD_TIMEOUT_MS[config.mode]} ms` });
    killChild();
  }, CHILD_TIMEOUT_MS[config.mode]);
  let done = false;
  child.on("message", (message: ChildMessage) => {
    if (message.type === "result") results.push(message.result);
    else if (message.type === "failed") failures.push({ id: message.id, error: message.error });
    else done = true;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  process.off("exit", killChild);
  if (!done)
    failures.push({ id: "child", error: `the child exited (code ${code}) before it finished` });
  return { results, failures };
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const certificate = await createBenchCertificate();
  const onSignal = (): void => {
    void certificate.remove().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    process.stderr.write(`bench: ${args.mode} run, measuring in a child process\n`);
    const config: ChildConfig = {
      mode: args.mode,
      tls: { cert: certificate.cert, key: certificate.key },
      only: args.only,
    };
    const { results, failures } = await runChild(config, certificate.caFile);
    const assembled = assembleResults(args.mode, results, failures);
    process.stdout.write(renderTable(assembled));
    const path = new URL("./results.json", import.meta.url);
    await writeResults(path, assembled);
    process.stderr.write(`bench: wrote ${fileURLToPath(path)}\n`);
    if (failures.length > 0) process.exitCode = 1;
  } finally {
    await certificate.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
