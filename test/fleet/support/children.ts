/**
 * Runs fleet children (`fixtures/credential-child.ts`) as real `node` processes and follows
 * what they print. Every child is killed when the test process exits, and a child exits by
 * itself when its stdin (a pipe from this process) closes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { ChildConfig } from "../fixtures/credential-child.js";

const CHILD = fileURLToPath(new URL("../fixtures/credential-child.ts", import.meta.url));

/** One line a child printed. */
export type ChildEvent =
  | { readonly type: "ready" }
  | { readonly type: "done" }
  | {
      readonly type: "token";
      readonly scope: string;
      readonly token: string;
      readonly expiresOnTimestamp: number;
      /** When this process read the line (epoch ms), stamped here, not by the child. */
      readonly receivedAt: number;
    }
  | { readonly type: "error"; readonly scope: string; readonly message: string }
  | { readonly type: "complete"; readonly scope: string };

/** A running child and everything it printed so far. */
export interface FleetChild {
  readonly process: ChildProcess;
  readonly events: ChildEvent[];
  /** The tokens it emitted for `scope`, in order. */
  tokens(scope: string): string[];
  /** Resolves once `predicate` holds (checked after every line); rejects if the child exits first. */
  until(predicate: (child: FleetChild) => boolean): Promise<void>;
  /** Resolves with the exit code once the child has exited. */
  readonly exited: Promise<number | null>;
  /** Closes stdin (the child closes its credential and exits) and waits for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** What it wrote on stderr (for failure messages). */
  stderr(): string;
}

const alive = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of alive) child.kill("SIGKILL");
});

/**
 * Starts one child with `config`; `env` is added to this process's environment.
 *
 * @example
 * ```ts
 * const child = startChild({ mode: "stream", ...common });
 * await child.until((c) => c.tokens(scope).length >= 2);
 * await child.stop();
 * ```
 */
export function startChild(config: ChildConfig, env: NodeJS.ProcessEnv = {}): FleetChild {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(config)], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  alive.add(proc);
  const events: ChildEvent[] = [];
  const watchers = new Set<() => void>();
  let buffered = "";
  let errors = "";
  proc.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  proc.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() !== "")
        events.push({ ...(JSON.parse(line) as object), receivedAt: Date.now() } as ChildEvent);
    }
    for (const watcher of [...watchers]) watcher();
  });
  const exited = once(proc, "exit").then(([code]) => {
    alive.delete(proc);
    for (const watcher of [...watchers]) watcher();
    return code as number | null;
  });
  const child: FleetChild = {
    process: proc,
    events,
    tokens: (scope) =>
      events.flatMap((event) =>
        event.type === "token" && event.scope === scope ? [event.token] : [],
      ),
    until: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (predicate(child)) {
            watchers.delete(check);
            resolve();
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            watchers.delete(check);
            reject(
              new Error(`child exited (${proc.exitCode ?? proc.signalCode}) first:\n${errors}`),
            );
          }
        };
        watchers.add(check);
        check();
      }),
    exited,
    stop: async () => {
      proc.stdin.end();
      return exited;
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
    stderr: () => errors,
  };
  return child;
}
