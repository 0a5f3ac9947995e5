/**
 * Regression (issue #18, item 3): `rotateOnNewValue` called `from(open(value))` inside the
 * source's `next` with no guard, so an `open` that threw synchronously (`new
 * WebSocket(badUrl)`, a projection returning `undefined`) went to rxjs's
 * `reportUnhandledError`: an uncaught exception and exit code 1, where `switchMap` delivers a
 * throwing projection to the subscriber. Now the subscriber gets it as an error notification.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ObservableInput } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotateOnNewValue } from "../../src/operators/index.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const operators = pathToFileURL(join(root, "src/operators/index.ts")).href;
let dir: string;
beforeAll(() => {
  // Inside the repository (in its git-ignored scratch folder), so the script resolves rxjs.
  mkdirSync(join(root, ".tmp"), { recursive: true });
  dir = mkdtempSync(join(root, ".tmp", "rotate-throw-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("rotateOnNewValue with an open that throws synchronously (marbles)", () => {
  it("errors downstream at that value and unsubscribes the source and the live connection", () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const values = hot<string>("-a---b---c");
      const connection = cold<string>("-r--m--m--m");
      const failure = new TypeError("Invalid URL: ws://[bad");
      const out = values.pipe(
        rotateOnNewValue((value) => {
          if (value === "b") throw failure;
          return connection;
        }),
      );
      expectObservable(out).toBe("--r--#", { r: "r" }, failure);
      expectSubscriptions(values.subscriptions).toBe("^----!");
      expectSubscriptions(connection.subscriptions).toBe("-^---!");
    });
  });

  it("errors downstream when the projection returns undefined, as from(undefined) throws", () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const out = cold<string>("-a").pipe(
        rotateOnNewValue(() => undefined as unknown as ObservableInput<string>),
      );
      expectObservable(out).toBe("-#", undefined, expect.any(TypeError));
    });
  });
});

/** Runs `source` as an ES module under tsx; resolves with its exit code and output. */
async function runChild(
  name: string,
  source: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const script = join(dir, name);
  writeFileSync(script, source);
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const killer = (): void => {
    child.kill();
  };
  process.once("exit", killer);
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  process.removeListener("exit", killer);
  return { code, out, err };
}

describe("in a real process", () => {
  it.each([
    ["open throws", `() => { throw new TypeError("Invalid URL: ws://[bad"); }`],
    ["open returns undefined", `() => undefined`],
  ])("%s: the subscriber gets the error and the process exits 0", async (name, open) => {
    const { code, out, err } = await runChild(
      `${name.replaceAll(" ", "-")}.mts`,
      `import { of } from "rxjs";
import { rotateOnNewValue } from ${JSON.stringify(operators)};
of("token").pipe(rotateOnNewValue(${open})).subscribe({
  next: () => console.log("unexpected value"),
  error: (error) => console.log("delivered " + error.name),
});
// rxjs reports an unhandled error from a timer: give it the chance to crash the process.
setTimeout(() => console.log("still running"), 50);
`,
    );

    expect(err).toBe("");
    expect(out.trim().split("\n")).toEqual(["delivered TypeError", "still running"]);
    expect(code).toBe(0);
  });
});
