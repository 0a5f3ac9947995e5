/**
 * One Entra ID emulator in a process of its own, for the fills of the key-scaling measure.
 * In the measuring process the emulator's work (signing every token) and the client's share
 * one thread; here they run on two cores, which is what lets a full run reach 100,000 keys
 * in about half the time. Started by {@link startEmulatorProcess}; serves the same
 * certificate as the main emulator (the measuring process trusts it through
 * `NODE_EXTRA_CA_CERTS`) and registers the same application for any tenant.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startEntraEmulator } from "../src/testing/index.js";

interface EmulatorProcessConfig {
  readonly tls: { readonly cert: string; readonly key: string };
  readonly clientId: string;
  readonly clientSecret: string;
  /** Lifetime of the application's tokens, in seconds (the emulator's default otherwise). */
  readonly tokenLifetimeSeconds?: number;
}

interface Ready {
  readonly authorityHost: string;
  readonly host: string;
}

/** An emulator running in another process. */
export interface EmulatorProcess extends Ready {
  /** Ends the process (and so the emulator). */
  stop(): Promise<void>;
}

const CONFIG_VARIABLE = "RX_IDENTITY_BENCH_EMULATOR";

/**
 * Starts an emulator in a child process and resolves once it listens.
 *
 * @example
 * ```ts
 * const remote = await startEmulatorProcess({ tls, clientId, clientSecret });
 * const target = { ...freshTarget(context), authorityHost: remote.authorityHost, host: remote.host };
 * await remote.stop();
 * ```
 */
export function startEmulatorProcess(config: EmulatorProcessConfig): Promise<EmulatorProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ["--import", import.meta.resolve("tsx")],
    env: { ...process.env, [CONFIG_VARIABLE]: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // Whatever happens to the measuring process, this one goes too.
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.on("exit", kill);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    void exited.then(() => reject(new Error("the emulator process exited before it listened")));
    child.once("message", (ready: Ready) => {
      resolve({
        authorityHost: ready.authorityHost,
        host: ready.host,
        stop: async () => {
          kill();
          await exited;
          process.off("exit", kill);
        },
      });
    });
  });
}

async function serve(raw: string): Promise<void> {
  const config = JSON.parse(raw) as EmulatorProcessConfig;
  // The parent's death closes the channel: never outlive it.
  process.on("disconnect", () => process.exit(0));
  const emulator = await startEntraEmulator({ tls: config.tls });
  emulator.registerApplication({
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    tenants: "*",
    ...(config.tokenLifetimeSeconds !== undefined
      ? { tokenLifetimeSeconds: config.tokenLifetimeSeconds }
      : {}),
  });
  const ready: Ready = { authorityHost: emulator.authorityHost, host: emulator.host };
  // Fills make hundreds of thousands of requests: the request log would only grow.
  setInterval(() => emulator.clearRequests(), 5_000).unref();
  process.send?.(ready);
}

const raw = process.env[CONFIG_VARIABLE];
if (raw !== undefined && process.send !== undefined) {
  serve(raw).catch((error: unknown) => {
    process.stderr.write(`bench emulator process failed: ${String(error)}\n`);
    process.exit(1);
  });
}
