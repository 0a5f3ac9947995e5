/**
 * A bench module run as a process of its own (the emulator of the fills, a stampede's
 * client): started with its configuration in an environment variable, it answers with one
 * IPC message and is ended with SIGKILL. Ending it ends whatever it left running (sockets,
 * retries, timers), which an in-process `close()` or abort signal cannot promise for a
 * library that ignores them.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A forked bench module. */
export interface BenchProcess<Message> {
  /** Its first IPC message; rejects if it exits before sending one. */
  readonly message: Promise<Message>;
  /** Kills the process and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Forks the bench module at `moduleUrl` (through tsx) with `config` as JSON in `variable`.
 * The module reads it with {@link benchProcessConfig}. The child inherits the environment,
 * so `NODE_EXTRA_CA_CERTS` (the emulator's certificate) holds there too.
 *
 * @example
 * ```ts
 * const child = forkBenchProcess<Ready>(import.meta.url, "RX_IDENTITY_BENCH_EMULATOR", config);
 * const ready = await child.message;
 * await child.stop();
 * ```
 */
export function forkBenchProcess<Message>(
  moduleUrl: string,
  variable: string,
  config: unknown,
): BenchProcess<Message> {
  const child = fork(fileURLToPath(moduleUrl), [], {
    execArgv: ["--import", import.meta.resolve("tsx")],
    env: { ...process.env, [variable]: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // Whatever happens to this process, that one goes too.
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.on("exit", kill);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const message = new Promise<Message>((resolve, reject) => {
    child.once("error", reject);
    void exited.then(() =>
      reject(new Error(`the bench process ${moduleUrl} exited before it answered`)),
    );
    child.once("message", (first: Message) => resolve(first));
  });
  // A caller that only stops the process need not handle an early exit.
  message.catch(() => undefined);
  return {
    message,
    stop: async () => {
      kill();
      await exited;
      process.off("exit", kill);
    },
  };
}

/**
 * In a forked bench module: its configuration when it was started by
 * {@link forkBenchProcess} with `variable`, or `undefined` when it was merely imported. Also
 * makes the process exit when its parent goes (the IPC channel closes).
 *
 * @example
 * ```ts
 * const config = benchProcessConfig<EmulatorProcessConfig>("RX_IDENTITY_BENCH_EMULATOR");
 * if (config !== undefined) void serve(config);
 * ```
 */
export function benchProcessConfig<Config>(variable: string): Config | undefined {
  const raw = process.env[variable];
  if (raw === undefined || process.send === undefined) return undefined;
  process.on("disconnect", () => process.exit(0));
  return JSON.parse(raw) as Config;
}

/**
 * Sends `message` to the parent over IPC and resolves once it is written.
 *
 * @example
 * ```ts
 * await answerParent({ authorityHost, host });
 * ```
 */
export function answerParent(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(new Error("not started by forkBenchProcess (no IPC channel)"));
      return;
    }
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}
