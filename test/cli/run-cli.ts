/**
 * Spawns the `rx-identity` CLI (`src/cli/bin.ts` through tsx) as a user would run it, and
 * makes sure no child outlives the test process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));
const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** The environment of a spawned CLI: the test's, minus any real Azure credentials. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  for (const name of Object.keys(env)) {
    if (name.startsWith("AZURE_") || name === "RX_IDENTITY_CA_FILE") delete env[name];
  }
  return { ...env, ...extra };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A started CLI process, with its output so far. */
export interface RunningCli {
  readonly child: ChildProcess;
  stdout(): string;
  readonly exited: Promise<CliResult>;
}

/** Starts `rx-identity ...args` (or another command line with `command`). */
export function startCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
  command: readonly string[] = [process.execPath, "--import", "tsx", bin],
): RunningCli {
  const [file, ...rest] = command;
  const child = spawn(file!, [...rest, ...args], {
    cwd: projectRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<CliResult>((resolve) => {
    child.once("close", (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, exited };
}

/** Runs `rx-identity ...args` to completion. */
export function runCli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, env).exited;
}

/** The non-empty lines of `text`. */
export function lines(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== "");
}
