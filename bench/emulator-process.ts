/**
 * One Entra ID emulator in a process of its own, for the fills of the key-scaling measure.
 * In the measuring process the emulator's work (signing every token) and the client's share
 * one thread; here they run on two cores, which is what lets a full run reach 100,000 keys
 * in about half the time. Started by {@link startEmulatorProcess}; serves the same
 * certificate as the main emulator (the measuring process trusts it through
 * `NODE_EXTRA_CA_CERTS`) and registers the same application for any tenant.
 */
import { startEntraEmulator, type EntraEmulator } from "../src/testing/index.js";
import { answerParent, benchProcessConfig, forkBenchProcess } from "./bench-process.js";

export interface EmulatorProcessConfig {
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
export async function startEmulatorProcess(
  config: EmulatorProcessConfig,
): Promise<EmulatorProcess> {
  const child = forkBenchProcess<Ready>(import.meta.url, CONFIG_VARIABLE, config);
  const ready = await child.message;
  return { authorityHost: ready.authorityHost, host: ready.host, stop: child.stop };
}

/**
 * An emulator in this process, serving `config`'s certificate and its application for any
 * tenant: what a bench process that needs one of its own starts.
 *
 * @example
 * ```ts
 * const emulator = await startAppEmulator({ tls, clientId, clientSecret });
 * ```
 */
export async function startAppEmulator(config: EmulatorProcessConfig): Promise<EntraEmulator> {
  const emulator = await startEntraEmulator({ tls: config.tls });
  emulator.registerApplication({
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    tenants: "*",
    ...(config.tokenLifetimeSeconds !== undefined
      ? { tokenLifetimeSeconds: config.tokenLifetimeSeconds }
      : {}),
  });
  return emulator;
}

async function serve(config: EmulatorProcessConfig): Promise<void> {
  const emulator = await startAppEmulator(config);
  // Fills make hundreds of thousands of requests: the request log would only grow.
  setInterval(() => emulator.clearRequests(), 5_000).unref();
  await answerParent({
    authorityHost: emulator.authorityHost,
    host: emulator.host,
  } satisfies Ready);
}

const config = benchProcessConfig<EmulatorProcessConfig>(CONFIG_VARIABLE);
if (config !== undefined) {
  serve(config).catch((error: unknown) => {
    process.stderr.write(`bench emulator process failed: ${String(error)}\n`);
    process.exit(1);
  });
}
