/**
 * A real `redis-server` for the store tests, on a free loopback port, with persistence off
 * (`--save '' --appendonly no`), so nothing is written to disk and every run starts empty.
 *
 * Nothing is left running: {@link RunningRedis.stop} (call it in `afterAll`) kills it; a
 * `process.on("exit")` hook kills any server still alive when the test process exits; and a
 * tiny watchdog child, holding a pipe from this process, kills the server when that pipe
 * closes, which also covers this process dying by SIGKILL (redis-server itself cannot watch
 * its parent).
 *
 * Install on Debian/Ubuntu: `apt-get install -y redis-server`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

/** A running (or, after {@link RunningRedis.kill}, stopped) Redis on a fixed port. */
export interface RunningRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS) */
  readonly url: string;
  /** Kills the server at once (SIGKILL), as a crash would. The port stays reserved for {@link restart}. */
  kill(): Promise<void>;
  /** Starts a fresh, empty server on the same port (after {@link kill}). */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, as with an overloaded Redis. */
  pause(): void;
  /** Unfreezes it (SIGCONT). */
  resume(): void;
  /** Stops the server for good. Idempotent. */
  stop(): Promise<void>;
}

const alive = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of alive) child.kill("SIGKILL");
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

// Kills `pid` when its stdin (a pipe from the test process) closes.
const WATCHDOG = `
process.stdin.on("end", () => { try { process.kill(Number(process.argv[1]), "SIGKILL"); } catch {} process.exit(0); });
process.stdin.on("error", () => {});
process.stdin.resume();
`;

/** PEM files for a TLS-only server (`--tls-port`, no plain port). */
export interface RedisTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

async function launch(
  port: number,
  startTimeoutMs: number,
  args: readonly string[],
  tls: RedisTlsFiles | undefined,
): Promise<ChildProcess> {
  installExitHook();
  const listen =
    tls === undefined
      ? ["--port", String(port)]
      : [
          "--port",
          "0",
          "--tls-port",
          String(port),
          "--tls-cert-file",
          tls.certFile,
          "--tls-key-file",
          tls.keyFile,
          "--tls-ca-cert-file",
          tls.caFile,
          // Server authentication only: clients show no certificate (as with Azure).
          "--tls-auth-clients",
          "no",
        ];
  const server = spawn(
    "redis-server",
    [
      ...listen,
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
      "--daemonize",
      "no",
      // "Ready to accept connections" is logged at notice level.
      "--loglevel",
      "notice",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  alive.add(server);
  server.once("exit", () => alive.delete(server));
  const watchdog = spawn(process.execPath, ["-e", WATCHDOG, String(server.pid)], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  server.once("exit", () => watchdog.stdin?.end());

  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      server.kill("SIGKILL");
      reject(
        new Error(`redis-server did not start on port ${port} in ${startTimeoutMs} ms:\n${output}`),
      );
    }, startTimeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout?.on("data", onData);
    server.stderr?.on("data", onData);
    server.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}) on port ${port}:\n${output}`));
    });
  });
  // Ready: stop buffering, but keep draining so the pipes never fill up.
  server.stdout?.removeAllListeners("data");
  server.stderr?.removeAllListeners("data");
  server.stdout?.resume();
  server.stderr?.resume();
  server.removeAllListeners("exit");
  server.once("exit", () => {
    alive.delete(server);
    watchdog.stdin?.end();
  });
  return server;
}

async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/**
 * Starts `redis-server` on a free loopback port.
 *
 * @example
 * ```ts
 * let redis: RunningRedis;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis.stop());
 * ```
 */
export async function startRedis(
  options: {
    readonly startTimeoutMs?: number;
    /** More `redis-server` arguments, such as `["--cluster-enabled", "yes"]`. */
    readonly args?: readonly string[];
    /** Listen with TLS only (`rediss://`), with this certificate. */
    readonly tls?: RedisTlsFiles;
  } = {},
): Promise<RunningRedis> {
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const args = options.args ?? [];
  let lastError: unknown;
  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      let server: ChildProcess | undefined = await launch(port, startTimeoutMs, args, options.tls);
      let stopped = false;
      return {
        port,
        url: `${options.tls === undefined ? "redis" : "rediss"}://127.0.0.1:${port}`,
        async kill() {
          await killChild(server);
          server = undefined;
        },
        async restart() {
          if (stopped) throw new Error("this Redis was stopped");
          await killChild(server);
          server = await launch(port, startTimeoutMs, args, options.tls);
        },
        pause() {
          server?.kill("SIGSTOP");
        },
        resume() {
          server?.kill("SIGCONT");
        },
        async stop() {
          stopped = true;
          await killChild(server);
          server = undefined;
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
