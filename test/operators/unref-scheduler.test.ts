import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createUnrefScheduler, unrefScheduler } from "../../src/operators/index.js";

describe("unrefScheduler", () => {
  it("arms timers that do not hold the event loop, clamped to the timer maximum", () => {
    const scheduler = createUnrefScheduler();
    const action = scheduler.schedule(() => undefined, Number.MAX_SAFE_INTEGER) as unknown as {
      id: NodeJS.Timeout;
      unsubscribe(): void;
    };
    expect(action.id.hasRef()).toBe(false);
    action.unsubscribe();
  });

  it("lets a script with a pending hour-long timer exit at once", () => {
    const module = fileURLToPath(new URL("../../src/operators/index.ts", import.meta.url));
    const script = `import { unrefScheduler } from ${JSON.stringify(module)};
      unrefScheduler.schedule(() => console.log("fired"), 3_600_000);
      console.log("done");`;
    const started = Date.now();
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        encoding: "utf8",
        timeout: 20_000,
      },
    );
    expect(child.stdout.trim()).toBe("done");
    expect(child.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("runs scheduled work with the rxjs asyncScheduler semantics", async () => {
    const ran = await new Promise<number>((resolve) => {
      unrefScheduler.schedule((state) => resolve(state ?? -1), 0, 42);
    });
    expect(ran).toBe(42);
  });
});
