import { describe, expect, it } from "vitest";
import { main } from "../../examples/redis-entra/index.js";

// Real time: the proxy in front of redis-server checks `exp` against the wall clock, as Azure
// does. Nothing below asserts on timing, only on what the client observed.
describe("examples/redis-entra", () => {
  it("keeps one connection authenticated across token rotations: no failed command, no close", async () => {
    const lines: string[] = [];

    const result = await main({
      lifetimeSeconds: 4,
      durationMs: 7_000,
      log: (line) => lines.push(line),
      env: {},
    });

    expect(result.target).toBe("local");
    expect(result.commandsSent).toBeGreaterThan(50);
    expect(result.commandsFailed).toBe(0);
    expect(result.closedForExpiry).toBe(0);
    expect(result.reconnects).toBe(0);
    expect(result.tokens).toBeGreaterThanOrEqual(3);
    expect(result.authAccepted).toBe(result.tokens);
    expect(lines.filter((line) => line.includes("re-authenticates"))).toHaveLength(
      result.tokens - 1,
    );
    expect(lines.join("\n")).not.toMatch(/eyJ[\w-]{20,}/);
  }, 30_000);
});
